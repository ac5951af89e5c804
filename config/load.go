package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads, strictly decodes, defaults and validates a cluster file.
func Load(path string) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster file: %w (create one with `kforge config print-defaults > %s`)", err, path)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(path); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse strictly decodes data (from file, used in messages) and applies
// defaults. It does not validate.
func Parse(file string, data []byte) (*Cluster, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Cluster
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty; start from `kforge config print-defaults`", file)
		}
		return nil, decodeError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s:%d: a second YAML document; a cluster file holds exactly one", file, extra.Line)
	}
	if err := recordHostLines(&c, data); err != nil {
		return nil, decodeError(file, err)
	}
	c.ApplyDefaults()
	return &c, nil
}

var lineMsg = regexp.MustCompile(`^line (\d+): (.*)$`)

// decodeError rewrites yaml.v3's "line N: msg" errors as "file:N: msg".
func decodeError(file string, err error) error {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		m = strings.TrimSpace(m)
		if g := lineMsg.FindStringSubmatch(m); g != nil {
			out = append(out, fmt.Sprintf("%s:%s: %s", file, g[1], friendly(g[2])))
		} else {
			out = append(out, fmt.Sprintf("%s: %s", file, friendly(m)))
		}
	}
	return fmt.Errorf("%s\n(`kforge config print-defaults` shows every field with its type)", strings.Join(out, "\n"))
}

var (
	unknownField = regexp.MustCompile(`^field (\S+) not found in type config\.(\w+)$`)
	badType      = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
)

func friendly(m string) string {
	if g := unknownField.FindStringSubmatch(m); g != nil {
		return fmt.Sprintf("unknown field %q in %s", g[1], g[2])
	}
	if g := badType.FindStringSubmatch(m); g != nil {
		return fmt.Sprintf("%q is a %s but this field needs a %s", g[2], g[1], strings.TrimPrefix(g[3], "config."))
	}
	return m
}

// recordHostLines remembers the line each host entry starts on.
func recordHostLines(c *Cluster, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != "hosts" || m.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, n := range m.Content[i+1].Content {
			if j < len(c.Hosts) {
				c.Hosts[j].line = n.Line
			}
		}
	}
	return nil
}

// where names a host in messages: "file:line: hosts[i] (address)".
func (c *Cluster) where(file string, i int) string {
	h := c.Hosts[i]
	loc := file
	if h.line > 0 {
		loc += ":" + strconv.Itoa(h.line)
	}
	name := h.Address
	if name == "" {
		name = "local"
	}
	return fmt.Sprintf("%s: hosts[%d] (%s)", loc, i, name)
}
