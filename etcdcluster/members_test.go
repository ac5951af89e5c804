package etcdcluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/util/wait"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/images"
	"kforge.dev/kforge/internal/testtier"
)

func TestQuorumAfterRemoval(t *testing.T) {
	three := []Member{{ID: 1, Name: "a"}, {ID: 2, Name: "b"}, {ID: 3, Name: "c"}}
	up := func(names ...string) func(Member) bool {
		return func(m Member) bool { return strings.Contains(strings.Join(names, ","), m.Name) }
	}
	if err := QuorumAfterRemoval(three, 3, up("a", "b")); err != nil {
		t.Errorf("3 members, c leaves, a and b up: %v", err)
	}
	if err := QuorumAfterRemoval(three, 3, up("a")); err == nil || !strings.Contains(err.Error(), "1 of the 2 voting etcd members answer, short of the 2") {
		t.Errorf("3 members, c leaves, only a up: %v", err)
	}
	if err := QuorumAfterRemoval([]Member{{ID: 1}}, 1, up()); err == nil || !strings.Contains(err.Error(), "last voting member") {
		t.Errorf("the last member: %v", err)
	}
	// A learner does not count toward the quorum.
	withLearner := append(three[:2:2], Member{ID: 4, Name: "d", Learner: true})
	if err := QuorumAfterRemoval(withLearner, 2, up("a", "d")); err != nil {
		t.Errorf("a stays with a learner: %v", err)
	}
}

func TestInitialCluster(t *testing.T) {
	list := []Member{
		{ID: 1, Name: "cp1", PeerURLs: []string{"https://10.0.0.1:2380"}},
		{ID: 2, Name: "", PeerURLs: []string{"https://10.0.0.2:2380"}, Learner: true},
		{ID: 3, Name: "", PeerURLs: []string{"https://10.0.0.3:2380"}, Learner: true},
	}
	got := InitialCluster(list, "cp2", "https://10.0.0.2:2380")
	if got != "cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380" {
		t.Fatalf("initial cluster %q", got)
	}
}

// etcdProcess is a real etcd on loopback.
type etcdProcess struct {
	name, client, peer string
	cmd                *exec.Cmd
}

func freeURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func startEtcd(t *testing.T, bin, name, peer, initialCluster, state string) *etcdProcess {
	t.Helper()
	e := &etcdProcess{name: name, client: freeURL(t), peer: peer}
	dir := t.TempDir()
	log, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	e.cmd = exec.Command(bin, "--name", name, "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", e.client, "--advertise-client-urls", e.client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", initialCluster, "--initial-cluster-state", state,
		"--heartbeat-interval", "50", "--election-timeout", "500")
	e.cmd.Stdout, e.cmd.Stderr = log, log
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.cmd.Process.Kill()
		_, _ = e.cmd.Process.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("%s's log ends:\n%s", name, tail(string(b), 15))
		}
	})
	return e
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func client(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// healthyAt waits until the member answers Status.
func healthyAt(t *testing.T, c *clientv3.Client, endpoint string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := c.Status(ctx, endpoint)
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("etcd at %s did not answer: %v", endpoint, err)
	}
}

// A second member joins as a learner, is promoted once caught up, and
// leaves again, with the real etcd of the default Kubernetes version.
func TestLearnerJoinPromoteRemove(t *testing.T) {
	testtier.Integration(t, "etcd from `make artifacts`")
	imgs, err := images.For(config.DefaultKubernetesVersion)
	if err != nil {
		t.Fatal(err)
	}
	bin := images.DefaultCache().Binary("etcd", imgs.Versions.Etcd, "etcd")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s is not built: run `make artifacts` first (%v)", bin, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p1 := freeURL(t)
	m1 := startEtcd(t, bin, "m1", p1, "m1="+p1, "new")
	c := client(t, m1.client)
	healthyAt(t, c, m1.client)
	if _, err := c.Put(ctx, "/kforge/test", "before the join"); err != nil {
		t.Fatal(err)
	}

	p2 := freeURL(t)
	ic, added, err := AddLearner(ctx, c, "m2", p2)
	if !added {
		t.Error("the first AddLearner says it added nothing")
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("m1=%s,m2=%s", p1, p2); ic != want {
		t.Fatalf("initial cluster %q, want %q", ic, want)
	}
	// A re-run adds nothing.
	if again, added, err := AddLearner(ctx, c, "m2", p2); err != nil || again != ic || added {
		t.Fatalf("second AddLearner: %q added %v %v", again, added, err)
	}
	list, _ := Members(ctx, c)
	if len(list) != 2 || !list[1].Learner && !list[0].Learner {
		t.Fatalf("after adding: %+v", list)
	}

	m2 := startEtcd(t, bin, "m2", p2, ic, "existing")
	if err := Promote(ctx, c, p2, 200*time.Millisecond, time.Minute); err != nil {
		t.Fatal(err)
	}
	list, _ = Members(ctx, c)
	for _, m := range list {
		if m.Learner {
			t.Fatalf("after promotion %s is still a learner: %+v", m.Name, list)
		}
	}
	// The new member has the data written before it joined.
	c2 := client(t, m2.client)
	healthyAt(t, c2, m2.client)
	resp, err := c2.Get(ctx, "/kforge/test", clientv3.WithSerializable())
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "before the join" {
		t.Fatalf("m2 reads %v %v", resp, err)
	}

	// m1 down as far as the check knows: m2 leaving would leave no quorum.
	down := func(m Member) bool { return m.Name != "m1" }
	if err := Remove(ctx, c, p2, down, false); err == nil || !strings.Contains(err.Error(), "short of the 1 a quorum needs") {
		t.Fatalf("removal without quorum: %v", err)
	}
	if err := Remove(ctx, c, p2, func(Member) bool { return true }, false); err != nil {
		t.Fatal(err)
	}
	if err := Remove(ctx, c, p2, func(Member) bool { return true }, false); err != nil {
		t.Fatalf("removing a member already gone: %v", err)
	}
	list, _ = Members(ctx, c)
	if len(list) != 1 || list[0].Name != "m1" {
		t.Fatalf("after removal: %+v", list)
	}
}
