package phases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// registryHosts renders the cluster file's registries as containerd's
// certs.d: a hosts.toml per registry with its mirrors in order, and its
// CA file when it has one. A mirror that has its own registries entry
// uses that entry's CA and skip_verify.
func registryHosts(c *config.Cluster) ([]host.File, error) {
	caPath := func(name string) string {
		if r, ok := c.Registries[name]; ok && r.CA != "" {
			return path.Join(layout.ContainerdCertsDir, name, "ca.crt")
		}
		return ""
	}
	var files []host.File
	for _, name := range c.RegistryNames() {
		r := c.Registries[name]
		h := templates.RegistryHosts{Registry: name, CA: caPath(name), CAData: r.CA, SkipVerify: r.InsecureSkipVerify}
		if h.CA != "" || h.SkipVerify {
			h.Server = "https://" + registryServer(name)
		}
		for _, m := range r.Mirrors {
			mh := config.RegistryHost(m)
			h.Mirrors = append(h.Mirrors, templates.RegistryMirror{URL: m, CA: caPath(mh), SkipVerify: c.Registries[mh].InsecureSkipVerify})
		}
		f, err := templates.RenderRegistryHosts(h, h.Dir(layout.ContainerdCertsDir))
		if err != nil {
			return nil, fmt.Errorf("registries.%s: %w", name, err)
		}
		// hosts.toml's first lines carry kforgeMark, which is how a later
		// run tells kforge's registries from the host's own.
		files = append(files, f...)
	}
	return files, nil
}

// registryServer is where a registry name's API answers: Docker Hub's
// docker.io is served by registry-1.docker.io, as containerd knows.
func registryServer(name string) string {
	if name == "docker.io" {
		return "registry-1.docker.io"
	}
	return name
}

// writeRegistryHosts writes the registries' certs.d files and removes the
// directories of registries kforge wrote before that the cluster file no
// longer lists. containerd reads hosts.toml at each pull: nothing
// restarts.
func writeRegistryHosts(ctx context.Context, d *Data) error {
	files, err := registryHosts(d.Cluster)
	if err != nil {
		return err
	}
	if _, err := host.WriteChanged(ctx, d.Host, files...); err != nil {
		return err
	}
	return removeStaleRegistryHosts(ctx, d, d.Cluster.Registries)
}

// removeStaleRegistryHosts removes each certs.d directory whose hosts.toml
// kforge wrote and keep does not list; the host's own stay.
func removeStaleRegistryHosts(ctx context.Context, d *Data, keep map[string]config.Registry) error {
	out, err := host.Script(ctx, d.Host, `[ -d "$1" ] || exit 0; grep -l "$2" "$1"/*/hosts.toml 2>/dev/null || true`, layout.ContainerdCertsDir, kforgeMark)
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(out) {
		dir := path.Dir(f)
		if _, ok := keep[path.Base(dir)]; ok {
			continue
		}
		if err := d.Host.Remove(ctx, dir); err != nil {
			return err
		}
	}
	return nil
}

// registryAuths resolves the credentials of each registry that has auth:
// from the references where this kforge runs, else from what an earlier
// run or the operator's kforge stored on this host (layout.RegistryAuth).
// What it resolves is stored for the next run. Credentials reach
// containerd's config only: never a log or a command line.
func registryAuths(ctx context.Context, d *Data) ([]templates.RegistryAuth, error) {
	stored, err := readRegistryAuth(ctx, d.Host)
	if err != nil {
		return nil, err
	}
	var auths []templates.RegistryAuth
	resolved := map[string]StoredAuth{}
	for _, name := range d.Cluster.RegistryNames() {
		r := d.Cluster.Registries[name]
		if r.Auth == nil {
			continue
		}
		user, password, err := r.Auth.Credentials()
		if err != nil {
			s, ok := stored[name]
			if !ok {
				return nil, fmt.Errorf("registries.%s.auth on %s: %v: set it where kforge runs, or join this host from the control plane (init -f, join --ssh), which brings the credentials it resolved", name, d.Host.Name(), err)
			}
			user, password = s.Username, s.Password
		}
		resolved[name] = StoredAuth{Username: user, Password: password}
		auths = append(auths, templates.RegistryAuth{Host: name, Username: user, Password: password})
	}
	if len(resolved) == 0 {
		if len(stored) > 0 {
			return nil, d.Host.Remove(ctx, layout.RegistryAuth)
		}
		return nil, nil
	}
	data, err := json.Marshal(resolved)
	if err != nil {
		return nil, err
	}
	_, err = host.WriteChanged(ctx, d.Host, host.File{Path: layout.RegistryAuth, Data: data, Mode: layout.SecretMode})
	return auths, err
}

// StoredAuth is a registry's resolved user and password in
// layout.RegistryAuth.
type StoredAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func readRegistryAuth(ctx context.Context, h host.Host) (map[string]StoredAuth, error) {
	data, err := h.ReadFile(ctx, layout.RegistryAuth)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]StoredAuth
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s on %s: %v; remove it and run again with the credentials' env: or file: references resolvable", layout.RegistryAuth, h.Name(), err)
	}
	return m, nil
}

// CopyRegistryAuth copies the registry credentials stored on from (the
// control plane) to to (a node about to join), over the connections kforge
// holds, so that the node's containerd can pull from them.
func CopyRegistryAuth(ctx context.Context, from, to host.Host) error {
	data, err := from.ReadFile(ctx, layout.RegistryAuth)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return to.WriteFile(ctx, layout.RegistryAuth, data, layout.SecretMode)
}
