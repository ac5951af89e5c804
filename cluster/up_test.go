package cluster

import (
	"bytes"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// adminKubeconfig is an admin.conf as kforge init writes it.
func adminKubeconfig(t *testing.T, server string) []byte {
	t.Helper()
	c := clientcmdapi.NewConfig()
	c.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: []byte("CA of " + server)}
	c.AuthInfos["kubernetes-admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("admin cert"), ClientKeyData: []byte("admin key")}
	c.Contexts["kubernetes-admin@kubernetes"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: "kubernetes-admin"}
	c.CurrentContext = "kubernetes-admin@kubernetes"
	b, err := clientcmd.Write(*c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkKforgeContext checks that the kubeconfig at path has the kforge
// context, current, with the admin's server, CA and credentials.
func checkKforgeContext(t *testing.T, path, server string) *clientcmdapi.Config {
	t.Helper()
	c, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.CurrentContext != ContextName {
		t.Errorf("current context %q, want %q", c.CurrentContext, ContextName)
	}
	ctx, cl, user := c.Contexts[ContextName], c.Clusters[ContextName], c.AuthInfos[ContextName]
	if ctx == nil || ctx.Cluster != ContextName || ctx.AuthInfo != ContextName {
		t.Fatalf("context %s: %+v", ContextName, ctx)
	}
	if cl == nil || cl.Server != server || string(cl.CertificateAuthorityData) != "CA of "+server {
		t.Errorf("cluster %s: %+v", ContextName, cl)
	}
	if user == nil || string(user.ClientCertificateData) != "admin cert" || string(user.ClientKeyData) != "admin key" {
		t.Errorf("user %s: %+v", ContextName, user)
	}
	return c
}

func TestMergeContextCreatesTheKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "home", ".kube", "config")
	if err := MergeContext(path, adminKubeconfig(t, "https://10.0.0.5:6443"), ContextName); err != nil {
		t.Fatal(err)
	}
	c := checkKforgeContext(t, path, "https://10.0.0.5:6443")
	if len(c.Contexts) != 1 || len(c.Clusters) != 1 || len(c.AuthInfos) != 1 {
		t.Errorf("a new kubeconfig holds only the kforge context: %d contexts, %d clusters, %d users", len(c.Contexts), len(c.Clusters), len(c.AuthInfos))
	}
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
	}
}

// TestMergeContextKeepsTheUsersContexts merges into a kubeconfig with a
// context of the user's and an older kforge context: the user's stays, the
// kforge one is replaced, a second merge changes nothing, and
// RemoveContext takes out only kforge's.
func TestMergeContextKeepsTheUsersContexts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	old := clientcmdapi.NewConfig()
	old.Clusters["work"] = &clientcmdapi.Cluster{Server: "https://work.example:6443"}
	old.AuthInfos["work"] = &clientcmdapi.AuthInfo{Token: "work-token"}
	old.Contexts["work"] = &clientcmdapi.Context{Cluster: "work", AuthInfo: "work", Namespace: "team"}
	old.Clusters[ContextName] = &clientcmdapi.Cluster{Server: "https://10.0.0.9:6443"}
	old.AuthInfos[ContextName] = &clientcmdapi.AuthInfo{Token: "stale"}
	old.Contexts[ContextName] = &clientcmdapi.Context{Cluster: ContextName, AuthInfo: ContextName}
	old.CurrentContext = "work"
	if err := clientcmd.WriteToFile(*old, path); err != nil {
		t.Fatal(err)
	}

	admin := adminKubeconfig(t, "https://127.0.0.1:6443")
	if err := MergeContext(path, admin, ContextName); err != nil {
		t.Fatal(err)
	}
	c := checkKforgeContext(t, path, "https://127.0.0.1:6443")
	if c.AuthInfos[ContextName].Token != "" {
		t.Errorf("the old kforge user's token stayed: %+v", c.AuthInfos[ContextName])
	}
	if w := c.Contexts["work"]; w == nil || w.Namespace != "team" || c.Clusters["work"].Server != "https://work.example:6443" || c.AuthInfos["work"].Token != "work-token" {
		t.Errorf("the user's context changed: %+v", w)
	}
	first, _ := os.ReadFile(path)
	if err := MergeContext(path, admin, ContextName); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Errorf("a second merge changed the file:\n%s\nthen\n%s", first, second)
	}

	if removed, err := RemoveContext(path, ContextName); err != nil || !removed {
		t.Fatalf("RemoveContext = %v, %v", removed, err)
	}
	c, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Contexts[ContextName] != nil || c.Clusters[ContextName] != nil || c.AuthInfos[ContextName] != nil || c.CurrentContext != "" || c.Contexts["work"] == nil {
		t.Errorf("after RemoveContext: current %q, contexts %v", c.CurrentContext, c.Contexts)
	}
	if removed, err := RemoveContext(path, ContextName); err != nil || removed {
		t.Errorf("a second RemoveContext = %v, %v, want false, nil", removed, err)
	}
}

func TestMergeContextRefusesBadAdminKubeconfigs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	c := clientcmdapi.NewConfig()
	c.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: "https://10.0.0.5:6443"}
	noCurrent, err := clientcmd.Write(*c)
	if err != nil {
		t.Fatal(err)
	}
	for name, admin := range map[string][]byte{"no current context": noCurrent, "not a kubeconfig": []byte("{")} {
		err := MergeContext(path, admin, ContextName)
		if err == nil {
			t.Errorf("%s: merged", name)
		}
		if name == "no current context" && (err == nil || !strings.Contains(err.Error(), "no current context")) {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s: the kubeconfig was written (%v)", name, err)
		}
	}
}

// Under sudo the kubeconfig is the invoking user's and stays theirs; an
// explicit --kubeconfig is written as it is.
func TestUserKubeconfigUnderSudo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sudo runs kforge as root: needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	t.Setenv("SUDO_USER", "nobody")
	t.Setenv("KUBECONFIG", "")
	k := UserKubeconfig("")
	if want := filepath.Join(u.HomeDir, ".kube", "config"); k.Path != want || strconv.Itoa(k.UID) != u.Uid || k.User != "nobody" {
		t.Errorf("under sudo: %+v, want %s owned by nobody (%s)", k, want, u.Uid)
	}
	t.Setenv("KUBECONFIG", "/tmp/a:/tmp/b")
	if k := UserKubeconfig(""); k.Path != "/tmp/a" || strconv.Itoa(k.UID) != u.Uid {
		t.Errorf("under sudo with KUBECONFIG: %+v", k)
	}
	if k := UserKubeconfig("/x/config"); k.Path != "/x/config" || k.UID != -1 {
		t.Errorf("--kubeconfig: %+v", k)
	}
	t.Setenv("SUDO_USER", "root")
	t.Setenv("KUBECONFIG", "")
	if k := UserKubeconfig(""); k.UID != -1 {
		t.Errorf("sudo by root: %+v", k)
	}

	// The file and a ~/.kube kforge makes belong to the user.
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	kc := KubeconfigFile{Path: filepath.Join(dir, ".kube", "config"), User: "nobody", UID: uid, GID: gid}
	if err := kc.Merge(adminKubeconfig(t, "https://10.0.0.5:6443"), ContextName); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{kc.Path, filepath.Dir(kc.Path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s owned by %d, want nobody (%d)", p, st.Uid, uid)
		}
	}
	if fi, _ := os.Stat(kc.Path); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v", kc.Path, fi.Mode())
	}
	// reset -f takes out only a context of its own cluster.
	if removed, err := kc.RemoveIf(ContextName, func(s string) bool { return s == "https://10.9.9.9:6443" }); err != nil || removed {
		t.Errorf("another cluster's context: removed %v, %v", removed, err)
	}
	if removed, err := kc.RemoveIf(ContextName, func(s string) bool { return s == "https://10.0.0.5:6443" }); err != nil || !removed {
		t.Errorf("this cluster's context: removed %v, %v", removed, err)
	}
}
