package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/cloudflare/cfssl/helpers"
)

// Registry is how containerd on every node reaches one image registry,
// the key of the cluster file's registries map: "docker.io",
// "registry.k8s.io", "harbor.example:5000". kforge writes it as
// containerd's /etc/containerd/certs.d/<key>/hosts.toml.
type Registry struct {
	// Mirrors are tried in order before the registry itself, as
	// http(s)://host[:port][/path] URLs.
	Mirrors []string `yaml:"mirrors,omitempty"`
	// CA is the PEM certificate, or a file holding it, that this
	// registry's TLS certificate chains to, when it is not one the OS
	// trusts. A file is read when the cluster file is loaded, so the
	// nodes get its text.
	CA string `yaml:"ca,omitempty"`
	// InsecureSkipVerify turns off TLS verification of this registry: a
	// test registry only.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify,omitempty"`
	// Auth is the registry's user and password, as references (env:NAME or
	// file:PATH) resolved on the machine kforge runs on; never the secret
	// itself.
	Auth *RegistryAuth `yaml:"auth,omitempty"`

	line int
}

// RegistryAuth holds references to a registry's credentials.
type RegistryAuth struct {
	UsernameFrom string `yaml:"usernameFrom"`
	PasswordFrom string `yaml:"passwordFrom"`
}

// Line is the registry's line in the cluster file, 0 when unknown.
func (r Registry) Line() int { return r.line }

// RegistryNames returns the registries' keys, sorted.
func (c *Cluster) RegistryNames() []string {
	names := make([]string, 0, len(c.Registries))
	for n := range c.Registries {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// registryAt names a registry in messages: "file:line: registries.NAME".
func (c *Cluster) registryAt(file, name string) string {
	loc := file
	if l := c.Registries[name].line; l > 0 {
		loc += ":" + strconv.Itoa(l)
	}
	return fmt.Sprintf("%s: registries.%s", loc, name)
}

// RegistryHost is the host[:port] a registry key or mirror URL names, as
// containerd names its certs.d directories.
func RegistryHost(s string) string {
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		return u.Host
	}
	return s
}

func (c *Cluster) validateRegistries(file string, add func(string, ...any)) {
	for _, name := range c.RegistryNames() {
		r := c.Registries[name]
		at := c.registryAt(file, name)
		if err := checkRegistryName(name); err != nil {
			add("%s: %v", at, err)
		}
		for _, m := range r.Mirrors {
			u, err := url.Parse(m)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
				add("%s: mirror %q: give a URL like https://mirror.example:5000 (http or https, no user or query)", at, m)
			}
		}
		if r.CA != "" && strings.Contains(r.CA, "-----BEGIN") {
			if err := checkCAPEM([]byte(r.CA)); err != nil {
				add("%s: ca: %v", at, err)
			}
		}
		if r.CA != "" && r.InsecureSkipVerify {
			add("%s: ca and insecureSkipVerify both set; keep ca and drop insecureSkipVerify", at)
		}
		if a := r.Auth; a != nil {
			for _, f := range [][2]string{{"auth.usernameFrom", a.UsernameFrom}, {"auth.passwordFrom", a.PasswordFrom}} {
				if !secretRefRe.MatchString(f[1]) {
					add("%s: %s %q: use env:NAME or file:PATH; credentials never go in the cluster file", at, f[0], f[1])
				}
			}
		}
	}
}

// checkRegistryName accepts host[:port] as image references name
// registries: a DNS name or IP, with an optional port.
func checkRegistryName(name string) error {
	bad := fmt.Errorf("%q is not a registry host[:port] such as docker.io or harbor.example:5000 (no scheme, no path)", name)
	if strings.ContainsAny(name, "/@ ") {
		return bad
	}
	h := name
	if host, port, err := net.SplitHostPort(name); err == nil {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("port %q is not a TCP port", port)
		}
		h = host
	}
	if net.ParseIP(h) == nil && !validDomain(h) {
		return bad
	}
	return nil
}

func checkCAPEM(data []byte) error {
	certs, err := helpers.ParseCertificatesPEM(data)
	if err != nil {
		return fmt.Errorf("it does not parse as PEM certificates; give the CA certificate file (-----BEGIN CERTIFICATE-----)")
	}
	if len(certs) == 0 {
		return fmt.Errorf("no PEM CERTIFICATE in it")
	}
	return nil
}

// ReadRegistryCAs replaces each registry's ca file name by the file's
// text, so that the nodes, which do not have the file, get the
// certificate. Load calls it after Validate.
func (c *Cluster) ReadRegistryCAs(file string) error {
	for _, name := range c.RegistryNames() {
		r := c.Registries[name]
		if r.CA == "" || strings.Contains(r.CA, "-----BEGIN") {
			continue
		}
		data, err := os.ReadFile(ExpandHome(r.CA))
		if err != nil {
			return fmt.Errorf("%s: ca: %w (give the PEM file of the CA that signed the registry's certificate)", c.registryAt(file, name), err)
		}
		if err := checkCAPEM(data); err != nil {
			return fmt.Errorf("%s: ca %s: %v", c.registryAt(file, name), r.CA, err)
		}
		r.CA = string(data)
		c.Registries[name] = r
	}
	return nil
}

// Credentials resolves a registry's user and password where kforge runs.
func (a RegistryAuth) Credentials() (user, password string, err error) {
	if user, err = Secret(a.UsernameFrom); err != nil {
		return "", "", err
	}
	if password, err = Secret(a.PasswordFrom); err != nil {
		return "", "", err
	}
	return user, password, nil
}

// checkImageRepository accepts host[:port]/path without a tag.
func checkImageRepository(r string) error {
	host, path, _ := strings.Cut(r, "/")
	if err := checkRegistryName(host); err != nil {
		return fmt.Errorf("%v; give host[:port][/path], e.g. harbor.example/k8s", err)
	}
	if strings.ContainsAny(path, ":@ ") || strings.HasSuffix(r, "/") {
		return fmt.Errorf("give a repository prefix without a tag or digest, e.g. harbor.example/k8s")
	}
	return nil
}
