package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"kforge.dev/kforge/images"
)

// write writes the bundle, zstd-compressed: manifest.json, its checksum,
// then the files in manifest order. A file whose content no longer matches its manifest entry
// fails the write.
func write(ctx context.Context, o CreateOptions, out string, raw []byte, m Manifest, files []file) (err error) {
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".kforge-bundle-*"+Extension)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	var total int64
	for _, e := range m.Entries {
		total += e.Size
	}
	bar := o.progress("write "+filepath.Base(out), total)
	defer bar.Close()
	zw, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2))
	if err != nil {
		return err
	}
	defer zw.Close()
	tw := tar.NewWriter(zw)
	sum := sha256.Sum256(raw)
	sumLine := []byte(hex.EncodeToString(sum[:]) + "  " + ManifestName + "\n")
	for _, small := range []struct {
		name string
		data []byte
	}{{ManifestName, raw}, {manifestSumName, sumLine}} {
		if err := tw.WriteHeader(header(small.name, int64(len(small.data)), 0o644)); err != nil {
			return err
		}
		if _, err := tw.Write(small.data); err != nil {
			return err
		}
	}
	for i, e := range m.Entries {
		if err := copyEntry(ctx, tw, e, files[i].src, bar); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), out)
}

func header(name string, size, mode int64) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg, Name: name, Size: size, Mode: mode,
		ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR,
	}
}

func copyEntry(ctx context.Context, tw *tar.Writer, e Entry, src string, progress io.Writer) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := tw.WriteHeader(header(e.Path, e.Size, e.Mode)); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h, progress), io.LimitReader(images.ContextReader(ctx, in), e.Size))
	if err != nil {
		return fmt.Errorf("%s: copying %s: %w", e.Path, src, err)
	}
	if n != e.Size || hex.EncodeToString(h.Sum(nil)) != e.SHA256 {
		return fmt.Errorf("%s: %s changed while the bundle was written", e.Path, src)
	}
	return nil
}

// pruneSiblings removes other bundles in the directory of a bundle kforge
// keyed by content, so that the cache keeps one per Kubernetes version.
func pruneSiblings(keep string) {
	dir := filepath.Dir(keep)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if n == filepath.Base(keep) || n == filepath.Base(keep)+SignatureExtension || !strings.HasPrefix(n, "kforge-bundle-") {
			continue
		}
		if strings.HasSuffix(n, Extension) || strings.HasSuffix(n, Extension+SignatureExtension) {
			os.Remove(filepath.Join(dir, n))
		}
	}
}
