package cluster

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kforge.dev/kforge/layout"
)

// KubeconfigFile is the kubeconfig kforge edits for the person who ran it.
type KubeconfigFile struct {
	Path string
	// User, UID and GID name the user who must own the file (and a
	// ~/.kube kforge creates) when kforge runs as root under sudo; UID -1
	// leaves ownership as it is.
	User     string
	UID, GID int
}

// UserKubeconfig is the kubeconfig kforge edits for the user: --kubeconfig,
// else the first file of $KUBECONFIG, else ~/.kube/config. Under sudo
// (root with SUDO_USER set, as sudo sets it) the home is the invoking
// user's, and the file stays theirs; only an explicit --kubeconfig is
// written as root.
func UserKubeconfig(flag string) KubeconfigFile {
	if flag != "" {
		return KubeconfigFile{Path: flag, UID: -1, GID: -1}
	}
	k := sudoUser()
	switch env := os.Getenv("KUBECONFIG"); {
	case env != "":
		k.Path = filepath.SplitList(env)[0]
	case k.UID >= 0:
		k.Path = filepath.Join(k.home, ".kube", "config")
	default:
		home, _ := os.UserHomeDir()
		k.Path = filepath.Join(home, ".kube", "config")
	}
	return k.KubeconfigFile
}

type invoker struct {
	KubeconfigFile
	home string
}

// sudoUser is the user who ran `sudo kforge`, or UID -1.
func sudoUser() invoker {
	none := invoker{KubeconfigFile: KubeconfigFile{UID: -1, GID: -1}}
	name := os.Getenv("SUDO_USER")
	if name == "" || name == "root" || os.Geteuid() != 0 {
		return none
	}
	u, err := user.Lookup(name)
	if err != nil {
		return none
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil || u.HomeDir == "" {
		return none
	}
	return invoker{KubeconfigFile: KubeconfigFile{User: name, UID: uid, GID: gid}, home: u.HomeDir}
}

// ownerNote says whose file it is when kforge keeps it the sudo user's.
func (k KubeconfigFile) ownerNote() string {
	if k.UID < 0 {
		return ""
	}
	return " (" + k.User + "'s)"
}

// MergeContext adds the admin kubeconfig's cluster, user and context to the
// kubeconfig at path under name, makes it the current context, and writes
// the file atomically with mode 0600.
func MergeContext(path string, admin []byte, name string) error {
	return KubeconfigFile{Path: path, UID: -1, GID: -1}.Merge(admin, name)
}

// Merge is MergeContext for k, which keeps its owner.
func (k KubeconfigFile) Merge(admin []byte, name string) error {
	src, err := clientcmd.Load(admin)
	if err != nil {
		return err
	}
	ctx := src.Contexts[src.CurrentContext]
	if ctx == nil {
		return fmt.Errorf("admin kubeconfig has no current context")
	}
	dst, err := loadOrEmpty(k.Path)
	if err != nil {
		return err
	}
	dst.Clusters[name] = src.Clusters[ctx.Cluster]
	dst.AuthInfos[name] = src.AuthInfos[ctx.AuthInfo]
	dst.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	dst.CurrentContext = name
	return k.write(dst)
}

// RemoveContext removes the named cluster, user and context from the
// kubeconfig at path; a missing file or context is not an error. It tells
// whether anything was removed.
func RemoveContext(path, name string) (bool, error) {
	return KubeconfigFile{Path: path, UID: -1, GID: -1}.Remove(name)
}

// Remove is RemoveContext for k, which keeps its owner.
func (k KubeconfigFile) Remove(name string) (bool, error) {
	return k.RemoveIf(name, nil)
}

// RemoveIf is Remove when the context's cluster server passes ours (nil
// passes every server): reset -f takes out only a context of its cluster.
func (k KubeconfigFile) RemoveIf(name string, ours func(server string) bool) (bool, error) {
	dst, err := loadOrEmpty(k.Path)
	if err != nil {
		return false, err
	}
	if dst.Contexts[name] == nil && dst.Clusters[name] == nil && dst.AuthInfos[name] == nil {
		return false, nil
	}
	if c := dst.Clusters[name]; ours != nil && (c == nil || !ours(c.Server)) {
		return false, nil
	}
	delete(dst.Contexts, name)
	delete(dst.Clusters, name)
	delete(dst.AuthInfos, name)
	if dst.CurrentContext == name {
		dst.CurrentContext = ""
	}
	return true, k.write(dst)
}

func loadOrEmpty(path string) (*clientcmdapi.Config, error) {
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return clientcmdapi.NewConfig(), nil
	}
	return clientcmd.LoadFromFile(path)
}

// write replaces the file atomically, 0600, owned by k's user when set (a
// directory it creates too).
func (k KubeconfigFile) write(c *clientcmdapi.Config) error {
	data, err := clientcmd.Write(*c)
	if err != nil {
		return err
	}
	dir := filepath.Dir(k.Path)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		if err := os.MkdirAll(dir, layout.PrivateDirMode); err != nil {
			return err
		}
		if k.UID >= 0 {
			if err := os.Chown(dir, k.UID, k.GID); err != nil {
				return err
			}
		}
	}
	return writePrivate(k.Path, data, k.UID, k.GID)
}

// writePrivate writes data to path through a new file of a random name
// beside it (O_EXCL: never through a symlink or over another file), 0600
// from its creation and owned by uid:gid unless uid is -1, then renamed
// into place.
func writePrivate(path string, data []byte, uid, gid int) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".kforge-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(layout.SecretMode)
	if err == nil && uid >= 0 {
		err = tmp.Chown(uid, gid)
	}
	if err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
