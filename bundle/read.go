package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"

	"kforge.dev/kforge/images"
)

// manifestSumName is the entry after manifest.json that holds its sha256
// ("<hex>  manifest.json", as sha256sum prints it), so that a changed byte
// in the manifest is found like one in any other entry.
const manifestSumName = "manifest.json.sha256"

// EntryError is a problem with one entry of a bundle.
type EntryError struct {
	Bundle string
	Entry  string
	Err    error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("bundle %s: entry %s: %v", e.Bundle, e.Entry, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// ErrCorrupt is wrapped by errors about content that does not match the
// manifest.
var ErrCorrupt = errors.New("corrupt")

// Inspect returns a bundle's manifest, reading only the start of the file.
// It does not check the other entries: Verify does.
func Inspect(path string) (Manifest, error) {
	tr, closer, err := open(path)
	if err != nil {
		return Manifest{}, err
	}
	defer closer()
	return readManifest(path, tr)
}

// zstdMagic starts every zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// open returns a tar reader of a bundle, decompressing it when it is zstd
// compressed, and the function that releases it.
func open(path string) (*tar.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if magic, _ := br.Peek(4); !bytes.Equal(magic, zstdMagic) {
		return tar.NewReader(br), func() { f.Close() }, nil
	}
	zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	return tar.NewReader(zr), func() { zr.Close(); f.Close() }, nil
}

// readManifest reads the first two entries, manifest.json and its sha256,
// and checks one against the other.
func readManifest(path string, tr *tar.Reader) (Manifest, error) {
	_, m, err := readManifestRaw(path, tr)
	return m, err
}

// readManifestRaw is readManifest that also returns manifest.json's bytes.
func readManifestRaw(path string, tr *tar.Reader) ([]byte, Manifest, error) {
	raw, err := readSmallEntry(path, tr, ManifestName)
	if err != nil {
		return nil, Manifest{}, err
	}
	sumLine, err := readSmallEntry(path, tr, manifestSumName)
	if err != nil {
		return nil, Manifest{}, err
	}
	sum := sha256.Sum256(raw)
	if want := hex.EncodeToString(sum[:]) + "  " + ManifestName + "\n"; string(sumLine) != want {
		return nil, Manifest{}, &EntryError{path, ManifestName, fmt.Errorf("%w: sha256 %s does not match %s (%q)",
			ErrCorrupt, hex.EncodeToString(sum[:]), manifestSumName, strings.TrimSpace(string(sumLine)))}
	}
	m, err := ParseManifest(raw)
	if err != nil {
		return nil, Manifest{}, &EntryError{path, ManifestName, err}
	}
	return raw, m, nil
}

// ParseManifest reads manifest.json's bytes and checks what readers rely
// on (validate).
func ParseManifest(raw []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, err
	}
	if err := m.validate(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

func readSmallEntry(path string, tr *tar.Reader, want string) ([]byte, error) {
	hdr, err := tr.Next()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, &EntryError{path, want, fmt.Errorf("reading the archive: %w (is this a kforge bundle?)", err)}
	}
	if hdr.Name != want {
		return nil, &EntryError{path, want, fmt.Errorf("not found at its place; found %q (is this a kforge bundle?)", hdr.Name)}
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size > 16<<20 {
		return nil, &EntryError{path, want, fmt.Errorf("not a regular file of at most 16 MiB")}
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return nil, &EntryError{path, want, err}
	}
	return b, nil
}

// Walk reads a bundle from start to end and calls fn, if not nil, with each
// entry after the manifest and a reader of its content. Whatever fn leaves
// unread is read by Walk. Every entry's type, size, mode and sha256 are
// checked against the manifest; the first mismatch ends the walk with an
// *EntryError naming the entry. fn sees the content before its checksum is
// known: callers that must not act on a corrupt bundle Verify it first.
func Walk(ctx context.Context, path string, fn func(Entry, io.Reader) error) (Manifest, error) {
	tr, closer, err := open(path)
	if err != nil {
		return Manifest{}, err
	}
	defer closer()
	m, err := readManifest(path, tr)
	if err != nil {
		return Manifest{}, err
	}
	want := map[string]Entry{}
	for _, e := range m.Entries {
		want[e.Path] = e
	}
	seen := map[string]bool{}
	prev := manifestSumName
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, &EntryError{path, "after " + prev, fmt.Errorf("%w: %v", ErrCorrupt, err)}
		}
		e, ok := want[hdr.Name]
		switch {
		case !ok:
			return m, &EntryError{path, hdr.Name, fmt.Errorf("%w: not in the manifest", ErrCorrupt)}
		case seen[hdr.Name]:
			return m, &EntryError{path, hdr.Name, fmt.Errorf("%w: in the archive twice", ErrCorrupt)}
		case hdr.Typeflag != tar.TypeReg:
			return m, &EntryError{path, hdr.Name, fmt.Errorf("%w: not a regular file", ErrCorrupt)}
		case hdr.Size != e.Size:
			return m, &EntryError{path, hdr.Name, fmt.Errorf("%w: size %d, the manifest says %d", ErrCorrupt, hdr.Size, e.Size)}
		case hdr.Mode != e.Mode:
			return m, &EntryError{path, hdr.Name, fmt.Errorf("%w: mode %o, the manifest says %o", ErrCorrupt, hdr.Mode, e.Mode)}
		}
		seen[hdr.Name] = true
		h := sha256.New()
		r := io.TeeReader(images.ContextReader(ctx, tr), h)
		if fn != nil {
			if err := fn(e, r); err != nil {
				return m, &EntryError{path, e.Path, err}
			}
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			return m, &EntryError{path, e.Path, err}
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
			return m, &EntryError{path, e.Path, fmt.Errorf("%w: sha256 %s, the manifest says %s", ErrCorrupt, got, e.SHA256)}
		}
		prev = e.Path
	}
	var missing []string
	for p := range want {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return m, &EntryError{path, strings.Join(missing, ", "), fmt.Errorf("%w: in the manifest but not in the archive", ErrCorrupt)}
	}
	return m, nil
}

// Verify reads the whole bundle and checks every entry against the
// manifest, and the manifest against its own checksum. The error names the
// first bad entry.
func Verify(path string) error {
	_, err := Walk(context.Background(), path, nil)
	return err
}
