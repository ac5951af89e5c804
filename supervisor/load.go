package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// loadServices reads every NAME.yaml in dir (names starting with '.' are
// temporary files of an atomic write and are skipped). A file that does not
// parse, whose name field differs from its file name, or whose service sits
// in a cycle of after dependencies lands in bad with the reason; the rest
// are returned by name. A missing dir means no services.
func loadServices(dir string) (good map[string]Service, bad map[string]error, err error) {
	good, bad = map[string]Service{}, map[string]error{}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return good, bad, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		file := e.Name()
		if e.IsDir() || strings.HasPrefix(file, ".") || !strings.HasSuffix(file, ".yaml") {
			continue
		}
		name := strings.TrimSuffix(file, ".yaml")
		path := filepath.Join(dir, file)
		data, err := os.ReadFile(path)
		if err != nil {
			bad[name] = err
			continue
		}
		s, err := ParseService(data)
		switch {
		case err != nil:
			bad[name] = fmt.Errorf("%s: %w", path, err)
		case s.Name != name:
			bad[name] = fmt.Errorf("%s: name %q does not match the file name", path, s.Name)
		default:
			good[name] = s
		}
	}
	for _, name := range inCycles(good) {
		bad[name] = fmt.Errorf("%s: its after dependencies form a cycle", ServiceFile(filepath.Dir(dir), name))
		delete(good, name)
	}
	return good, bad, nil
}

// inCycles lists the services that can reach themselves through after.
func inCycles(svcs map[string]Service) []string {
	var out []string
	for name := range svcs {
		seen := map[string]bool{}
		stack := slices.Clone(svcs[name].After)
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if n == name {
				out = append(out, name)
				break
			}
			if seen[n] {
				continue
			}
			seen[n] = true
			stack = append(stack, svcs[n].After...)
		}
	}
	slices.Sort(out)
	return out
}
