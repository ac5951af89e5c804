// Package templates holds every file kforge writes to a host that is more
// than a few lines long: the control plane's static pod manifests, the
// kubelet's configuration, flags and systemd unit, and containerd's
// config.toml. The files live under files/ as text/template sources,
// embedded in the binary; each family has a typed data struct and a render
// function that validates the data, fills in defaults and returns the files
// with the paths they belong at on the host.
package templates

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

//go:embed files
var files embed.FS

// Render executes the template files/<name>.tmpl, e.g.
// "controlplane/etcd.yaml", with data. A missing map key is an error, and
// every error names the template file.
func Render(name string, data any) ([]byte, error) {
	return render(name, data, funcs())
}

func render(name string, data any, fm template.FuncMap) ([]byte, error) {
	file := path.Join("files", name+".tmpl")
	src, err := files.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("template %s: no such template", file)
	}
	t, err := template.New(file).Option("missingkey=error").Funcs(fm).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", file, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", file, err)
	}
	return buf.Bytes(), nil
}

// Names lists the templates Render knows, without the .tmpl suffix.
func Names() []string {
	var names []string
	_ = fs.WalkDir(files, "files", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".tmpl") {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(p, "files/"), ".tmpl"))
		}
		return nil
	})
	sort.Strings(names)
	return names
}

func funcs() template.FuncMap {
	return template.FuncMap{
		"q":     yamlScalar,
		"toml":  tomlString,
		"dict":  dict,
		"set":   set,
		"flags": flags,
		"join":  strings.Join,
	}
}

// dict builds a map from key, value pairs, for flags.
func dict(kv ...string) (map[string]string, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict needs key, value pairs, got %d arguments", len(kv))
	}
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m, nil
}

// set adds key to a map made by dict; it returns "" so that a template can
// discard it with {{ $_ := set ... }}.
func set(m map[string]string, key, value string) string {
	m[key] = value
	return ""
}

// flags turns defaults, overridden and extended by extra, into
// --name=value arguments sorted by name, as kubeadm orders them.
func flags(defaults, extra map[string]string) []string {
	merged := make(map[string]string, len(defaults)+len(extra))
	for k, v := range defaults {
		merged[k] = v
	}
	for k, v := range extra {
		merged[strings.TrimLeft(k, "-")] = v
	}
	names := make([]string, 0, len(merged))
	for k := range merged {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, k := range names {
		out = append(out, "--"+k+"="+merged[k])
	}
	return out
}

// yamlScalar writes s as a YAML string: plain when that reads back as the
// same string, double-quoted otherwise.
func yamlScalar(s string) string {
	if plainYAML(s) {
		return s
	}
	return jsonString(s)
}

func plainYAML(s string) bool {
	if s == "" || strings.HasSuffix(s, ":") {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '/':
		case r == '-' && (i > 0 || len(s) > 1):
		case i > 0 && strings.ContainsRune("._:,=*@+%~", r):
		default:
			return false
		}
	}
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return false
	}
	got, ok := v.(string)
	return ok && got == s
}

// tomlString writes s as a TOML basic string.
func tomlString(s string) string { return jsonString(s) }

// jsonString quotes s with JSON escapes, which YAML double-quoted scalars
// and TOML basic strings both accept.
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}
