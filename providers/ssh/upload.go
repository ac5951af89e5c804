package ssh

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"github.com/schollz/progressbar/v3"

	"kforge.dev/kforge/host"
)

// progressMin is the smallest upload that shows a progress bar.
const progressMin = 1 << 20

// remoteSumScript prints the mode and sha256 of $1 when it is a regular file.
// A directory at $1 is an error, found before any data is sent: renaming
// a file over it fails, and installScript's mv would move the file into it.
const remoteSumScript = `if [ -d "$1" ]; then echo "$1 is a directory" >&2; exit 1; fi
[ -f "$1" ] || exit 0; stat -L -c %a -- "$1" && sha256sum -- "$1"`

// installScript copies $1 to a temporary file next to $3, sets mode $4 and
// renames it to $3, creating the directory $2 first.
const installScript = `set -e
mkdir -p -- "$2"
t=$(mktemp "$2/.kforge-XXXXXXXX")
trap 'rm -f -- "$t"' EXIT
cat -- "$1" > "$t"
chmod "$4" "$t"
mv -f -- "$t" "$3"
trap - EXIT`

// Upload copies localPath to p with mode, unless p already has the same
// sha256; see the package comment for how.
func (h *Host) Upload(ctx context.Context, localPath, p string, mode fs.FileMode) error {
	f, err := os.Open(localPath)
	if err != nil {
		return fmt.Errorf("upload %s: %w", localPath, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", localPath, err)
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return fmt.Errorf("upload: reading %s: %w", localPath, err)
	}
	want := hex.EncodeToString(sum.Sum(nil))

	res, err := h.script(ctx, nil, remoteSumScript, p)
	if err != nil {
		return err
	}
	if lines := strings.Fields(string(res.Stdout)); len(lines) >= 2 && lines[1] == want {
		if lines[0] == octal(mode) {
			return nil
		}
		_, err := h.asRoot(ctx, nil, "chmod", octal(mode), "--", p)
		return err
	}

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	src := h.progress(ctx, f, fi.Size(), path.Base(p))
	if h.cfg.user() == "root" {
		err = h.uploadDirect(src, p, mode)
	} else {
		err = h.uploadViaTmp(ctx, src, p, mode)
	}
	if err != nil {
		return err
	}
	h.transfers.Add(1)
	return nil
}

// uploadDirect writes src over SFTP to a temporary name next to p, then
// renames it to p.
func (h *Host) uploadDirect(src io.Reader, p string, mode fs.FileMode) error {
	sc, err := h.sftpClient()
	if err != nil {
		return err
	}
	dir := path.Dir(p)
	if err := sc.MkdirAll(dir); err != nil {
		return h.sftpErr("mkdir", dir, err)
	}
	tmp := path.Join(dir, ".kforge-upload-"+randomName())
	if err := sftpWrite(sc, tmp, src, mode); err != nil {
		return h.sftpErr("upload", p, err)
	}
	if err := sc.PosixRename(tmp, p); err != nil {
		_ = sc.Remove(tmp)
		return h.sftpErr("rename", p, err)
	}
	return nil
}

// uploadViaTmp writes src over SFTP into a private directory in /tmp owned
// by the login user, then installs it to p as root.
func (h *Host) uploadViaTmp(ctx context.Context, src io.Reader, p string, mode fs.FileMode) error {
	sc, err := h.sftpClient()
	if err != nil {
		return err
	}
	dir := "/tmp/.kforge-upload-" + randomName()
	if err := sc.Mkdir(dir); err != nil {
		return h.sftpErr("mkdir", dir, err)
	}
	defer func() {
		// The directory is the user's own; clean it up even when ctx is done.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
		defer cancel()
		_, _ = h.Run(cctx, host.Cmd{Argv: []string{"rm", "-rf", "--", dir}})
	}()
	if err := sc.Chmod(dir, 0o700); err != nil {
		return h.sftpErr("chmod", dir, err)
	}
	tmp := path.Join(dir, path.Base(p))
	if err := sftpWrite(sc, tmp, src, 0o600); err != nil {
		return h.sftpErr("upload", tmp, err)
	}
	_, err = h.script(ctx, nil, installScript, tmp, dirArg(p), p, octal(mode))
	return err
}

func sftpWrite(sc *sftp.Client, name string, src io.Reader, mode fs.FileMode) error {
	f, err := sc.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return err
	}
	if err := sc.Chmod(name, mode); err != nil {
		f.Close()
		_ = sc.Remove(name)
		return err
	}
	if _, err := f.ReadFrom(src); err != nil {
		f.Close()
		_ = sc.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		_ = sc.Remove(name)
		return err
	}
	return nil
}

func (h *Host) sftpErr(op, p string, err error) error {
	return fmt.Errorf("sftp %s %s: %w", op, p, err)
}

func randomName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// progress wraps r: it stops with ctx's error once ctx is done and, for
// large files with Config.Progress set, draws a progress bar.
func (h *Host) progress(ctx context.Context, r io.Reader, size int64, name string) io.Reader {
	pr := &uploadReader{ctx: ctx, r: r, size: size}
	if h.cfg.Progress != nil && size > progressMin {
		pr.bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(h.cfg.Progress),
			progressbar.OptionSetDescription(fmt.Sprintf("%s %s", h.Name(), name)),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(h.cfg.Progress) }),
		)
	}
	return pr
}

// uploadReader reports its size so pkg/sftp writes it with concurrent
// requests.
type uploadReader struct {
	ctx  context.Context
	r    io.Reader
	size int64
	bar  *progressbar.ProgressBar
}

func (u *uploadReader) Size() int64 { return u.size }

func (u *uploadReader) Read(b []byte) (int, error) {
	if err := u.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := u.r.Read(b)
	if u.bar != nil && n > 0 {
		_ = u.bar.Add(n)
	}
	if u.bar != nil && err == io.EOF {
		_ = u.bar.Finish()
	}
	return n, err
}
