package bundle

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"kforge.dev/kforge/images"
)

// DownloadOptions say where a bundle's official binaries and images come
// from on a machine with internet access.
type DownloadOptions struct {
	// BaseURL has the Kubernetes release binaries at
	// <BaseURL>/<version>/bin/linux/amd64/<binary>, each with its sha256
	// at <binary>.sha256. Default https://dl.k8s.io/release.
	BaseURL string
	// CNIBaseURL has the CNI plugins release at
	// <CNIBaseURL>/<version>/cni-plugins-linux-amd64-<version>.tgz (and
	// .tgz.sha256). Default: the GitHub releases of containernetworking/plugins.
	CNIBaseURL string
	// Registry, if set, is pulled from instead of each image's own
	// registry, keeping the repository path: registry.k8s.io/pause:3.10.1
	// comes from <Registry>/pause:3.10.1. The images keep their upstream
	// names in the bundle.
	Registry string
	// Client makes the HTTP requests; nil means one with connect, TLS and
	// response-header timeouts.
	Client *http.Client
	// FileTimeout bounds each file's download; default 10 minutes.
	FileTimeout time.Duration
	// PullTimeout bounds pulling all images; default 30 minutes.
	PullTimeout time.Duration
}

func (d *DownloadOptions) withDefaults() DownloadOptions {
	o := *d
	if o.BaseURL == "" {
		o.BaseURL = "https://dl.k8s.io/release"
	}
	if o.CNIBaseURL == "" {
		o.CNIBaseURL = "https://github.com/containernetworking/plugins/releases/download"
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: transport()}
	}
	if o.FileTimeout == 0 {
		o.FileTimeout = 10 * time.Minute
	}
	if o.PullTimeout == 0 {
		o.PullTimeout = 30 * time.Minute
	}
	return o
}

func (d *DownloadOptions) describe() string {
	o := d.withDefaults()
	s := "download from " + o.BaseURL + " and " + o.CNIBaseURL
	if o.Registry != "" {
		s += ", images from " + o.Registry
	} else {
		s += ", images from their registries"
	}
	return s
}

// transport is an HTTP transport whose every wait is bounded; a whole
// transfer is bounded by its context.
func transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 30 * time.Second
	t.ResponseHeaderTimeout = time.Minute
	t.ExpectContinueTimeout = 5 * time.Second
	return t
}

// download fetches the release binaries and the CNI plugins into work,
// checking each against its published sha256, and pulls the images into
// work/images.tar.
func download(ctx context.Context, co CreateOptions, set images.Set, work string) ([]file, string, error) {
	o := co.Download.withDefaults()
	v := set.Versions
	var files []file
	for _, b := range nodeBinaries(co.WithoutKubeadm) {
		url := strings.TrimSuffix(o.BaseURL, "/") + "/" + v.Kubernetes + "/bin/linux/amd64/" + b
		dst := filepath.Join(work, b)
		err := co.step("download "+b+" "+v.Kubernetes, func() error { return fetchChecked(ctx, co, o, url, dst) })
		if err != nil {
			return nil, "", err
		}
		files = append(files, file{path: BinDir + b, src: dst, mode: 0o755})
	}
	tgzName := "cni-plugins-linux-amd64-" + v.CNIPlugins + ".tgz"
	tgz := filepath.Join(work, tgzName)
	url := strings.TrimSuffix(o.CNIBaseURL, "/") + "/" + v.CNIPlugins + "/" + tgzName
	err := co.step("download CNI plugins "+v.CNIPlugins, func() error {
		if err := fetchChecked(ctx, co, o, url, tgz); err != nil {
			return err
		}
		return extractPlugins(tgz, filepath.Join(work, "cni"), CNIPlugins)
	})
	if err != nil {
		return nil, "", err
	}
	for _, p := range CNIPlugins {
		files = append(files, file{path: CNIDir + p, src: filepath.Join(work, "cni", p), mode: 0o755})
	}
	archive := filepath.Join(work, ImagesName)
	err = co.step(fmt.Sprintf("pull %d images", len(set.All())), func() error {
		return pull(ctx, o, set.All(), archive)
	})
	return files, archive, err
}

// fetchChecked downloads url to dst and checks it against the sha256
// published at url + ".sha256" (a hex digest, optionally followed by the
// file name). A mismatch removes dst and names both digests.
func fetchChecked(ctx context.Context, co CreateOptions, o DownloadOptions, url, dst string) error {
	ctx, cancel := context.WithTimeout(ctx, o.FileTimeout)
	defer cancel()
	var sumFile strings.Builder
	if err := fetch(ctx, o.Client, url+".sha256", &sumFile, 4096, nil); err != nil {
		return err
	}
	fields := strings.Fields(sumFile.String())
	if len(fields) == 0 || len(fields[0]) != 64 || strings.Trim(strings.ToLower(fields[0]), "0123456789abcdef") != "" {
		return fmt.Errorf("%s.sha256 does not hold a sha256 digest: %q", url, sumFile.String())
	}
	want := strings.ToLower(fields[0])
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	h := sha256.New()
	err = fetch(ctx, o.Client, url, io.MultiWriter(f, h), -1, co.Progress)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if got := hex.EncodeToString(h.Sum(nil)); got != want {
			err = fmt.Errorf("%s: sha256 %s, but %s.sha256 says %s; the download is corrupt or was tampered with", url, got, path.Base(url), want)
		}
	}
	if err != nil {
		os.Remove(dst)
		return err
	}
	return os.Chmod(dst, 0o755)
}

// fetch GETs url into w, failing on a status other than 200 and on bodies
// longer than limit (if limit >= 0).
func fetch(ctx context.Context, c *http.Client, url string, w io.Writer, limit int64, progress func(string, int64) io.WriteCloser) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: %s", url, resp.Status)
	}
	body := io.Reader(resp.Body)
	if limit >= 0 {
		body = io.LimitReader(body, limit+1)
	}
	if progress != nil {
		bar := progress(path.Base(url), resp.ContentLength)
		defer bar.Close()
		w = io.MultiWriter(w, bar)
	}
	n, err := io.Copy(w, body)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	if limit >= 0 && n > limit {
		return fmt.Errorf("downloading %s: more than %d bytes", url, limit)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("downloading %s: got %d of %d bytes", url, n, resp.ContentLength)
	}
	return nil
}

// extractPlugins writes the named plugins of a CNI release tarball into dir.
func extractPlugins(tgz, dir string, names []string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		name := path.Base(path.Clean(hdr.Name))
		if hdr.Typeflag != tar.TypeReg || !want[name] {
			continue
		}
		out, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: extracting %s: %w", tgz, name, err)
		}
		delete(want, name)
	}
	if len(want) > 0 {
		var missing []string
		for _, n := range names {
			if want[n] {
				missing = append(missing, n)
			}
		}
		return fmt.Errorf("%s lacks the plugins %s", tgz, strings.Join(missing, ", "))
	}
	return nil
}
