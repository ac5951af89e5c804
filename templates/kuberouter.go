package templates

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"kforge.dev/kforge/layout"
)

// AddonKubeRouter is the pod network of clusters with more than one node.
const AddonKubeRouter = "kube-router"

// Defaults of KubeRouter.
const (
	DefaultKubeRouterCNIConf = "10-kuberouter.conflist"
)

// KubeRouter is the data of kube-router's manifest: its ServiceAccount and
// RBAC, the CNI config it installs, and its DaemonSet (pod networking and
// network policy; Services stay with kube-proxy).
type KubeRouter struct {
	// Image is images.Set's KubeRouter; the init container that installs
	// the CNI config runs it too (it has sh, cp and mv).
	Image string
	// APIServerURL is where kube-router reaches the API server:
	// https://host:port of the control-plane endpoint.
	APIServerURL string
	// LibModules mounts the host's /lib/modules; set it only when the host
	// has that directory.
	LibModules bool
	// CNIConfDir and CNIConfName say where the CNI config goes;
	// layout.CNIConfDir and DefaultKubeRouterCNIConf when empty.
	CNIConfDir  string
	CNIConfName string
}

// RenderKubeRouter renders kube-router's manifest.
func RenderKubeRouter(k KubeRouter) (Addon, error) {
	if k.CNIConfDir == "" {
		k.CNIConfDir = layout.CNIConfDir
	}
	if k.CNIConfName == "" {
		k.CNIConfName = DefaultKubeRouterCNIConf
	}
	var errs []error
	if k.Image == "" {
		errs = append(errs, errors.New("Image is empty"))
	}
	if u, err := url.Parse(k.APIServerURL); err != nil || u.Scheme != "https" || u.Host == "" || u.Port() == "" || u.Path != "" {
		errs = append(errs, fmt.Errorf("APIServerURL %q is not https://host:port", k.APIServerURL))
	}
	// Both go into a shell script unquoted.
	if !path.IsAbs(k.CNIConfDir) || strings.ContainsAny(k.CNIConfDir, " \t\n\"'\\$`;&|<>*?") {
		errs = append(errs, fmt.Errorf("CNIConfDir %q is not an absolute path of plain characters", k.CNIConfDir))
	}
	if strings.ContainsAny(k.CNIConfName, "/ \t\n\"'\\$`;&|<>*?") || !strings.HasSuffix(k.CNIConfName, ".conflist") {
		errs = append(errs, fmt.Errorf("CNIConfName %q is not a plain *.conflist file name", k.CNIConfName))
	}
	if err := errors.Join(errs...); err != nil {
		return Addon{}, fmt.Errorf("kube-router: %w", err)
	}
	data, err := Render("addons/kube-router.yaml", k)
	if err != nil {
		return Addon{}, err
	}
	return Addon{Name: AddonKubeRouter, Data: data}, nil
}
