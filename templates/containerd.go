package templates

import (
	"errors"
	"fmt"
	"io/fs"
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
	// RegistryConfigPath is containerd's registry config_path, the
	// directory of per-registry hosts.toml files; empty means
	// /etc/containerd/certs.d.
	RegistryConfigPath string
	// RegistryAuths are credentials per registry host. With any, the file
	// is written 0600.
	RegistryAuths []RegistryAuth
}

// RegistryAuth is one registry host's user and password in containerd's
// CRI config (registry.configs."HOST".auth): containerd answers both
// Basic and token challenges with them, which hosts.toml headers cannot.
type RegistryAuth struct {
	Host, Username, Password string
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
	mode := fs.FileMode(layout.PublicMode)
	if len(c.RegistryAuths) > 0 {
		mode = fs.FileMode(layout.SecretMode)
	}
	files := []host.File{{Path: c.ConfigPath, Data: data, Mode: mode}}
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
	def(&c.RegistryConfigPath, layout.ContainerdCertsDir)
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

// RegistryHosts is one registry's hosts.toml in containerd's certs.d.
type RegistryHosts struct {
	// Registry is the host[:port] images name, e.g. docker.io.
	Registry string
	// Server is the registry's own URL, written when its TLS settings
	// differ from the defaults; empty leaves containerd's default.
	Server string
	// CA is the path of the registry's CA file, CAData its PEM: written
	// beside hosts.toml when set.
	CA, CAData string
	SkipVerify bool
	Mirrors    []RegistryMirror
}

// RegistryMirror is a mirror tried before the registry, with the CA
// file its TLS certificate chains to.
type RegistryMirror struct {
	URL, CA    string
	SkipVerify bool
}

// Dir is the registry's directory in certs.d.
func (r RegistryHosts) Dir(certsDir string) string {
	if certsDir == "" {
		certsDir = layout.ContainerdCertsDir
	}
	return path.Join(certsDir, r.Registry)
}

// RenderRegistryHosts renders a registry's hosts.toml and, when it has
// one, its CA file, in dir.
func RenderRegistryHosts(r RegistryHosts, dir string) ([]host.File, error) {
	if r.Registry == "" || strings.ContainsAny(r.Registry, "/ ") {
		return nil, fmt.Errorf("registry %q is not a host[:port]", r.Registry)
	}
	data, err := Render("containerd/hosts.toml", r)
	if err != nil {
		return nil, err
	}
	files := []host.File{{Path: path.Join(dir, "hosts.toml"), Data: data, Mode: layout.PublicMode}}
	if r.CAData != "" {
		files = append(files, host.File{Path: r.CA, Data: []byte(r.CAData), Mode: layout.PublicMode})
	}
	return files, nil
}
