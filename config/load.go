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
	"unicode/utf8"

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
	if err := c.ReadRegistryCAs(path); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse strictly decodes data (from file, used in messages) and applies
// defaults. It does not validate.
func Parse(file string, data []byte) (*Cluster, error) {
	if err := checkUTF8(file, data); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Cluster
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the file is empty; start from `kforge config print-defaults`", file)
		}
		return nil, decodeError(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("%s:%d: a second YAML document; a cluster file holds exactly one", file, extra.Line)
	}
	if err := recordHostLines(&c, data); err != nil {
		return nil, decodeError(file, data, err)
	}
	c.ApplyDefaults()
	return &c, nil
}

var lineMsg = regexp.MustCompile(`^line (\d+): (.*)$`)

// checkUTF8 refuses a file that is not UTF-8 text, naming the line and
// column of the first byte that is not.
func checkUTF8(file string, data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%s:%d:%d: byte 0x%02x is not UTF-8 text; save the file as UTF-8", file, line, col, data[i])
		}
		if r == '\n' {
			line, col = line+1, 0
		}
		col++
		i += size
	}
	return nil
}

// fieldAt names the field whose value is on line of the YAML document
// data, as hosts[0].ssh.port, or "".
func fieldAt(data []byte, line int) string {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return ""
	}
	var walk func(n *yaml.Node, path string) string
	walk = func(n *yaml.Node, path string) string {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if f := walk(c, path); f != "" {
					return f
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if v.Kind == yaml.ScalarNode && v.Line == line {
					return p
				}
				if f := walk(v, p); f != "" {
					return f
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if c.Kind == yaml.ScalarNode && c.Line == line {
					return fmt.Sprintf("%s[%d]", path, i)
				}
				if f := walk(c, fmt.Sprintf("%s[%d]", path, i)); f != "" {
					return f
				}
			}
		}
		return ""
	}
	return walk(&doc, "")
}

// decodeError rewrites yaml.v3's "line N: msg" errors as "file:N: msg",
// naming the field of a value of the wrong type.
func decodeError(file string, data []byte, err error) error {
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
			msg := friendly(g[2])
			if n, _ := strconv.Atoi(g[1]); badType.MatchString(g[2]) {
				if f := fieldAt(data, n); f != "" {
					msg = f + ": " + msg
				}
			}
			out = append(out, fmt.Sprintf("%s:%s: %s", file, g[1], msg))
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
		return fmt.Sprintf("%q is %s but this field needs %s", g[2], typeName(g[1]), typeName(strings.TrimPrefix(g[3], "config.")))
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
		recordExtraArgLines(c, m.Content[i].Value, m.Content[i+1])
		if m.Content[i].Value == "registries" && m.Content[i+1].Kind == yaml.MappingNode {
			regs := m.Content[i+1].Content
			for j := 0; j+1 < len(regs); j += 2 {
				if r, ok := c.Registries[regs[j].Value]; ok {
					r.line = regs[j].Line
					c.Registries[regs[j].Value] = r
				}
			}
		}
		if m.Content[i].Value == "loadBalancer" {
			c.LoadBalancer.line = m.Content[i].Line
		}
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

// recordExtraArgLines remembers the line of each component.extraArgs entry.
func recordExtraArgLines(c *Cluster, component string, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "extraArgs" || n.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		args := n.Content[i+1].Content
		for j := 0; j+1 < len(args); j += 2 {
			if c.extraArgLines == nil {
				c.extraArgLines = map[string]int{}
			}
			c.extraArgLines[component+"."+args[j].Value] = args[j].Line
		}
	}
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

// typeName spells a YAML tag or Go type for a message.
func typeName(t string) string {
	switch t {
	case "str", "string":
		return "a string"
	case "int":
		return "an integer"
	case "bool":
		return "true or false"
	case "float":
		return "a number"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	if strings.HasPrefix(t, "[]") {
		return "a list"
	}
	return "a " + t
}
