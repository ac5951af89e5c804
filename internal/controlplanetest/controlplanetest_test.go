package controlplanetest

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/providers/local"
)

// TestRenderedControlPlaneRuns starts etcd, the API server, the controller
// manager and the scheduler with kforge's rendered flags and PKI.
func TestRenderedControlPlaneRuns(t *testing.T) {
	cp := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("readyz with kforge's admin certificate", func(t *testing.T) {
		c := cp.Client(t, "admin")
		// admin.conf trusts only kforge's CA: this also verifies the API
		// server's serving certificate for 127.0.0.1.
		body, err := c.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil || string(body) != "ok" {
			t.Fatalf("/readyz = %q, %v", body, err)
		}
		r, err := c.Kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u := r.Status.UserInfo
		if u.Username != "kubernetes-admin" || !slices.Contains(u.Groups, certs.ClusterAdminsGroup) {
			t.Errorf("admin.conf authenticates as %s %v, want kubernetes-admin in %s", u.Username, u.Groups, certs.ClusterAdminsGroup)
		}
	})

	t.Run("super-admin is a cluster admin", func(t *testing.T) {
		c := cp.Client(t, "super-admin")
		if _, err := c.Kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("controller-manager and scheduler healthz", func(t *testing.T) {
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		for _, url := range []string{"https://127.0.0.1:10257/healthz", "https://127.0.0.1:10259/healthz"} {
			resp, err := hc.Get(url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: HTTP %d", url, resp.StatusCode)
			}
		}
	})

	t.Run("controller-manager and scheduler act", func(t *testing.T) {
		c := cp.Client(t, "super-admin")
		// The controller manager's service-account controllers create a
		// ServiceAccount in every namespace; leader election leaves a
		// Lease for each component.
		deadline := time.Now().Add(90 * time.Second)
		for _, lease := range []string{"kube-controller-manager", "kube-scheduler"} {
			for {
				_, err := c.Kube.CoordinationV1().Leases("kube-system").Get(ctx, lease, metav1.GetOptions{})
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no leader Lease %s: %v", lease, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		for {
			_, err := c.Kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the controller manager made no default ServiceAccount: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

// TestABadFlagFails shows that a component refusing its command line is
// reported, with its exit, instead of waited on until the deadline.
func TestABadFlagFails(t *testing.T) {
	bin := Binary(t, nil, "kube-scheduler")
	p, err := startProcess(bin, []string{"--no-such-flag=1"}, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	start := time.Now()
	err = waitHTTP(p, "https://127.0.0.1:1/healthz", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("want an exit error, got %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the exit was noticed after %s", d)
	}
}

func TestArgsMovePathsAndCheckMounts(t *testing.T) {
	root := t.TempDir()
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{
			Command: []string{"etcd", "--data-dir=/var/lib/etcd", "--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--name=cp1", "--urls=https://127.0.0.1:2379"},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "data", MountPath: "/var/lib/etcd"},
				{Name: "certs", MountPath: "/etc/kubernetes/pki/etcd"},
			},
		}},
		Volumes: []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/etcd"}}},
			{Name: "certs", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/etc/kubernetes/pki/etcd"}}},
		},
	}}
	cp := &ControlPlane{Root: root, Host: local.Rooted(root), Pods: map[string]*corev1.Pod{"etcd": pod}}
	args, err := cp.commandLine("etcd")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--data-dir=" + root + "/var/lib/etcd", "--cert-file=" + root + "/etc/kubernetes/pki/etcd/server.crt", "--name=cp1", "--urls=https://127.0.0.1:2379"}
	if !slices.Equal(args, want) {
		t.Errorf("args %q, want %q", args, want)
	}

	pod.Spec.Containers[0].Command = append(pod.Spec.Containers[0].Command, "--key-file=/etc/kubernetes/pki/etcdx/server.key")
	if _, err := cp.commandLine("etcd"); err == nil || !strings.Contains(err.Error(), "no hostPath volume") {
		t.Errorf("a flag naming an unmounted file: %v", err)
	}
	pod.Spec.Containers[0].Command[0] = "kube-apiserver"
	if _, err := cp.commandLine("etcd"); err == nil {
		t.Error("a command for another binary passed")
	}
}

// TestWaitHTTP probes as the kubelet would: it waits through failing
// answers for a 200, names the last answer when time is up, and stops at
// once when the process exits.
func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 || r.URL.Path == "/never" {
			http.Error(w, "[-]etcd failed", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	sleeper, err := startProcess("/bin/sleep", []string{"60"}, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer sleeper.stop()

	if err := waitHTTP(sleeper, srv.URL+"/readyz", 10*time.Second); err != nil || calls.Load() != 3 {
		t.Errorf("after %d answers: %v", calls.Load(), err)
	}
	err = waitHTTP(sleeper, srv.URL+"/never", 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not ready after 300ms; last answer: HTTP 503: [-]etcd failed") {
		t.Errorf("a probe that never passes: %v", err)
	}

	gone, err := startProcess("/bin/false", nil, filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	<-gone.done
	start := time.Now()
	err = waitHTTP(gone, srv.URL+"/never", time.Minute)
	if err == nil || !strings.Contains(err.Error(), "the process exited (exit status 1)") || time.Since(start) > 10*time.Second {
		t.Errorf("an exited process, after %s: %v", time.Since(start), err)
	}
}
