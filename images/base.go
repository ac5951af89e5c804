package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Base is the Debian layer under the images whose programs exec system
// tools: kube-proxy and kube-router run iptables, ipset and conntrack.
type Base struct {
	Suite    string   // bookworm
	Variant  string   // minbase
	Packages []string // installed on top of the variant
	Mirror   string   // Debian mirror URL
	// Debootstrap is the command run to make the root file system, with
	// its leading arguments; the options, suite, target and mirror follow.
	Debootstrap []string
	// Tar packs the root file system; "-C DIR -cf FILE ." follow its
	// excludes.
	Tar []string
	// Timeout bounds the whole build (debootstrap downloads from the
	// mirror).
	Timeout time.Duration
}

// DefaultBase is Debian bookworm minbase with what kube-proxy and
// kube-router exec: iptables, ipset, conntrack, and iproute2's ip, which
// kube-router's upstream image has too; and haproxy, the node-local load
// balancer of clusters with several control planes, so that all of them
// share one layer.
func DefaultBase() Base {
	return Base{
		Suite:       "bookworm",
		Variant:     "minbase",
		Packages:    []string{"iptables", "ipset", "conntrack", "iproute2", "haproxy", "keepalived"},
		Mirror:      "http://deb.debian.org/debian",
		Debootstrap: []string{"debootstrap"},
		Tar:         []string{"tar", "--numeric-owner", "--xattrs"},
		Timeout:     20 * time.Minute,
	}
}

// baseFormat changes whenever the way the root file system is made changes,
// so that a cached one of an older kforge is not reused.
const baseFormat = "kforge base 2"

// Key identifies the root file system Base makes: how kforge makes it,
// suite, variant, mirror and the sorted package list.
func (b Base) Key() string {
	pkgs := append([]string(nil), b.Packages...)
	sort.Strings(pkgs)
	h := sha256.New()
	fmt.Fprintf(h, "%s\nsuite=%s\nvariant=%s\nmirror=%s\narch=amd64\npackages=%s\n",
		baseFormat, b.Suite, b.Variant, b.Mirror, strings.Join(pkgs, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// rootfsExcludes are left out of the layer: device nodes and kernel file
// systems come from the container runtime; apt's caches and logs are
// useless in an image.
var rootfsExcludes = []string{
	"./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*",
	"./var/cache/apt/*", "./var/lib/apt/lists/*", "./var/log/*", "./debootstrap",
}

// Rootfs returns the path of the base's root file system as a tar file,
// c.Dir/base/<key>/rootfs.tar, building it with debootstrap (as root, with
// network access to the mirror) when it is not there yet. The file appears
// complete or not at all; the debootstrap log is kept next to it.
func (b Base) Rootfs(ctx context.Context, c Cache, log io.Writer) (string, error) {
	dir := c.Path("base", b.Key())
	out := filepath.Join(dir, "rootfs.tar")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if log == nil {
		log = io.Discard
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if b.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.Timeout)
		defer cancel()
	}
	work, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "rootfs")

	logPath := filepath.Join(dir, "debootstrap.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()
	args := append(append([]string(nil), b.Debootstrap[1:]...),
		"--variant="+b.Variant, "--arch=amd64")
	if len(b.Packages) > 0 {
		args = append(args, "--include="+strings.Join(b.Packages, ","))
	}
	args = append(args, b.Suite, root, b.Mirror)
	fmt.Fprintf(log, "building the %s %s base layer (%s): %s %s\n",
		b.Suite, b.Variant, strings.Join(b.Packages, ","), b.Debootstrap[0], strings.Join(args, " "))
	if err := run(ctx, logFile, b.Debootstrap[0], args...); err != nil {
		return "", fmt.Errorf("%w; log: %s", err, logPath)
	}
	if err := trim(root); err != nil {
		return "", err
	}
	tmp := filepath.Join(work, "rootfs.tar")
	targs := append([]string(nil), b.Tar[1:]...)
	for _, x := range rootfsExcludes {
		targs = append(targs, "--exclude="+x)
	}
	targs = append(targs, "-C", root, "-cf", tmp, ".")
	if err := run(ctx, logFile, b.Tar[0], targs...); err != nil {
		return "", fmt.Errorf("%w; log: %s", err, logPath)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// trim removes what a container never reads: apt's caches, translations,
// manual pages and documentation except the copyright files.
func trim(root string) error {
	for _, p := range []string{"var/cache/apt/archives", "var/lib/apt/lists", "usr/share/locale", "usr/share/man", "usr/share/info"} {
		entries, _ := os.ReadDir(filepath.Join(root, p))
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(root, p, e.Name())); err != nil {
				return err
			}
		}
	}
	doc := filepath.Join(root, "usr/share/doc")
	pkgs, _ := os.ReadDir(doc)
	for _, pkg := range pkgs {
		files, _ := os.ReadDir(filepath.Join(doc, pkg.Name()))
		for _, f := range files {
			if f.Name() != "copyright" {
				if err := os.RemoveAll(filepath.Join(doc, pkg.Name(), f.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// run runs a command, its output going to log; the error carries the
// command line and the tail of its output.
func run(ctx context.Context, log io.Writer, name string, args ...string) error {
	var tail bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = io.MultiWriter(log, &tail)
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	out := tail.String()
	if len(out) > 2000 {
		out = "..." + out[len(out)-2000:]
	}
	return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(out))
}
