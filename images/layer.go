package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is a file of the local machine placed into an image.
type File struct {
	Src  string // path on this machine
	Dst  string // absolute path in the image, e.g. /usr/local/bin/etcd
	Mode int64  // permission bits; 0 means 0755
}

// epoch is the modification time of every file kforge puts into a layer, so
// the same binaries always give the same layer digest.
var epoch = time.Unix(0, 0).UTC()

// FileLayer returns a layer holding files (and their parent directories),
// owned by root, with fixed timestamps. The layer is read from the files
// whenever its content is needed and compressed once; the files must not
// change while the layer is in use. ctx cancels reads.
func FileLayer(ctx context.Context, files []File) (v1.Layer, error) {
	files = append([]File(nil), files...)
	for i, f := range files {
		if !path.IsAbs(f.Dst) || path.Clean(f.Dst) != f.Dst {
			return nil, fmt.Errorf("image path %q of %s is not a clean absolute path", f.Dst, f.Src)
		}
		if files[i].Mode == 0 {
			files[i].Mode = 0o755
		}
		st, err := os.Stat(f.Src)
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", f.Src)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Dst < files[j].Dst })
	for i := 1; i < len(files); i++ {
		if files[i].Dst == files[i-1].Dst {
			return nil, fmt.Errorf("two files for %s in one layer", files[i].Dst)
		}
	}
	opener := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeLayer(ctx, pw, files)) }()
		return pr, nil
	}
	return tarball.LayerFromOpener(opener, tarball.WithCompressedCaching)
}

// writeLayer writes the tar stream of a layer: each parent directory once,
// then the file.
func writeLayer(ctx context.Context, w io.Writer, files []File) error {
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, f := range files {
		rel := strings.TrimPrefix(f.Dst, "/")
		var parents []string
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX,
			}); err != nil {
				return err
			}
		}
		if err := copyFile(ctx, tw, f, rel); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(ctx context.Context, tw *tar.Writer, f File, name string) error {
	in, err := os.Open(f.Src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg, Name: name, Mode: f.Mode, Size: st.Size(), ModTime: epoch, Format: tar.FormatPAX,
	}); err != nil {
		return err
	}
	n, err := io.Copy(tw, ctxReader{ctx, in})
	if err != nil {
		return fmt.Errorf("reading %s: %w", f.Src, err)
	}
	if n != st.Size() {
		return fmt.Errorf("%s changed size while it was read", f.Src)
	}
	return nil
}

// ContextReader reads from r until ctx is done.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
