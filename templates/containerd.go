package templates

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// Defaults for Containerd fields left empty.
const (
	DefaultSnapshotter = "overlayfs"
)

// Containerd is the data of containerd's config.toml.
type Containerd struct {
	// ConfigVersion is 2 for containerd 1.6 and 1.7, 3 for containerd 2.x;
	// 0 means 2.
	ConfigVersion int
	// ConfigPath is where the file goes; empty means
	// /etc/containerd/config.toml.
	ConfigPath string
	// Root, State and Address default to containerd's own; a containerd
	// running beside docker's needs all three of its own.
	Root    string
	State   string
	Address string
	// SandboxImage is the pause image, e.g. registry.k8s.io/pause:3.10.1.
	SandboxImage string
	// SystemdCgroup makes runc use systemd's cgroup driver: true exactly
	// when the kubelet's CgroupDriver is systemd.
	SystemdCgroup bool
	// RestrictOOMScoreAdj is a host fact: true when the host lacks
	// CAP_SYS_RESOURCE, so that containers never ask for an
	// oom_score_adj below containerd's own.
	RestrictOOMScoreAdj bool
	// CNIBinDir is required: layout.DebianCNIBinDir or layout.CNIBinDir.
	CNIBinDir string
	// CNIConfDir defaults to /etc/cni/net.d.
	CNIConfDir string
	// Snapshotter defaults to overlayfs.
	Snapshotter string
	// RuntimeBinary, when set, is the OCI runtime runc.v2 shims call
	// instead of runc on $PATH, e.g. /usr/local/bin/runc.
	RuntimeBinary string
	// BinaryPath, when set, is a containerd that kforge installed: a
	// systemd unit that runs it is rendered too (UnitPath, default
	// /etc/systemd/system/containerd.service). Empty: the OS's containerd
	// and its own unit.
	BinaryPath string
	UnitPath   string
}

// ServicePath is the PATH of kforge's containerd unit.
func (Containerd) ServicePath() string { return layout.ServicePath }

// RenderContainerd renders containerd's config.toml.
func RenderContainerd(c Containerd) ([]host.File, error) {
	c = c.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	data, err := Render(fmt.Sprintf("containerd/config-v%d.toml", c.ConfigVersion), c)
	if err != nil {
		return nil, err
	}
	files := []host.File{{Path: c.ConfigPath, Data: data, Mode: layout.PublicMode}}
	if c.BinaryPath != "" {
		unit, err := Render("containerd/containerd.service", c)
		if err != nil {
			return nil, err
		}
		files = append(files, host.File{Path: c.UnitPath, Data: unit, Mode: layout.PublicMode})
	}
	return files, nil
}

func (c Containerd) withDefaults() Containerd {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	if c.ConfigVersion == 0 {
		c.ConfigVersion = 2
	}
	def(&c.ConfigPath, layout.ContainerdConfig)
	def(&c.Root, layout.ContainerdRoot)
	def(&c.State, layout.ContainerdState)
	def(&c.Address, layout.ContainerdSocket)
	def(&c.CNIConfDir, layout.CNIConfDir)
	def(&c.Snapshotter, DefaultSnapshotter)
	def(&c.UnitPath, layout.ContainerdUnit)
	return c
}

func (c Containerd) validate() error {
	var errs []error
	if c.ConfigVersion != 2 && c.ConfigVersion != 3 {
		errs = append(errs, fmt.Errorf("ConfigVersion %d: use 2 for containerd 1.6/1.7, 3 for containerd 2.x", c.ConfigVersion))
	}
	if c.SandboxImage == "" {
		errs = append(errs, errors.New("SandboxImage is empty"))
	}
	if c.CNIBinDir == "" {
		errs = append(errs, fmt.Errorf("CNIBinDir is empty: %s for Debian's containernetworking-plugins, %s for a bundle", layout.DebianCNIBinDir, layout.CNIBinDir))
	}
	for field, p := range map[string]string{
		"ConfigPath": c.ConfigPath, "Root": c.Root, "State": c.State, "Address": c.Address,
		"CNIBinDir": c.CNIBinDir, "CNIConfDir": c.CNIConfDir,
	} {
		if p != "" && !path.IsAbs(p) {
			errs = append(errs, fmt.Errorf("%s %q is not an absolute path", field, p))
		}
	}
	if c.BinaryPath != "" && !path.IsAbs(c.BinaryPath) {
		errs = append(errs, fmt.Errorf("BinaryPath %q is not an absolute path", c.BinaryPath))
	}
	if c.RuntimeBinary != "" && !path.IsAbs(c.RuntimeBinary) {
		errs = append(errs, fmt.Errorf("RuntimeBinary %q is not an absolute path", c.RuntimeBinary))
	}
	if strings.TrimSpace(c.Snapshotter) != c.Snapshotter {
		errs = append(errs, fmt.Errorf("Snapshotter %q has spaces", c.Snapshotter))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("containerd config: %w", err)
	}
	return nil
}
