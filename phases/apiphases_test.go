package phases

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kforge.dev/kforge/config"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 200 {
		id, secret, err := newToken()
		if err != nil {
			t.Fatal(err)
		}
		if !tokenPattern.MatchString(id + "." + secret) {
			t.Fatalf("token %s.%s", id, secret)
		}
		if seen[id] {
			t.Fatalf("token id %s twice in 200", id)
		}
		seen[id] = true
		for _, r := range id + secret {
			counts[r]++
		}
	}
	if len(counts) != 36 {
		t.Errorf("200 tokens used %d of the 36 characters", len(counts))
	}
}

func TestTokenValid(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	d := &Data{Config: Config{Now: func() time.Time { return now }}}
	s := func(exp string) *corev1.Secret {
		return &corev1.Secret{Type: corev1.SecretTypeBootstrapToken, Data: map[string][]byte{
			"token-secret": []byte("0123456789abcdef"), "expiration": []byte(exp),
			"usage-bootstrap-authentication": []byte("true"), "usage-bootstrap-signing": []byte("true"),
		}}
	}
	for _, tc := range []struct {
		secret *corev1.Secret
		token  string
		want   bool
	}{
		{s("2030-01-02T00:00:00Z"), "0123456789abcdef", true},
		{s(""), "0123456789abcdef", true},
		{s("2030-01-01T00:30:00Z"), "0123456789abcdef", false},
		{s("2029-12-31T00:00:00Z"), "0123456789abcdef", false},
		{s("tomorrow"), "0123456789abcdef", false},
		{s("2030-01-02T00:00:00Z"), "fedcba9876543210", false},
	} {
		if got := d.tokenValid(tc.secret, tc.token); got != tc.want {
			t.Errorf("expiration %s, token %s: valid %v, want %v", tc.secret.Data["expiration"], tc.token, got, tc.want)
		}
	}
}

func TestJoinCommandRefusesABadToken(t *testing.T) {
	if _, err := JoinCommand("10.0.0.5:6443", "ABCDEF.0123456789abcdef", nil); err == nil || !strings.Contains(err.Error(), "[a-z0-9]{6}") {
		t.Errorf("an upper-case token: %v", err)
	}
}

func TestMarkNode(t *testing.T) {
	other := corev1.Taint{Key: "example.com/dedicated", Value: "x", Effect: corev1.TaintEffectNoExecute}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}, Spec: corev1.NodeSpec{Taints: []corev1.Taint{other}}}
	if !markNode(n, true) {
		t.Fatal("marking a fresh node changed nothing")
	}
	if n.Labels[ControlPlaneLabel] != "" || n.Labels["a"] != "b" || len(n.Spec.Taints) != 2 || !n.Spec.Taints[1].MatchTaint(&ControlPlaneTaint) {
		t.Errorf("marked node %+v %+v", n.Labels, n.Spec.Taints)
	}
	if markNode(n, true) {
		t.Error("marking a marked node changed it")
	}
	if !markNode(n, false) || len(n.Spec.Taints) != 1 || n.Spec.Taints[0] != other {
		t.Errorf("making it schedulable left %v", n.Spec.Taints)
	}
	if markNode(n, false) {
		t.Error("a schedulable node changed again")
	}
}

func TestClusterForUploadDropsSSH(t *testing.T) {
	c := config.Default()
	c.Hosts = append(c.Hosts, config.Host{Address: "192.0.2.11", Role: config.RoleWorker,
		SSH: config.SSH{User: "admin", KeyPath: "~/.ssh/id_ed25519", PasswordFrom: "env:PW"}, Sudo: config.Sudo{PasswordFrom: "file:/pw"}})
	out, err := clusterForUpload(&Data{Config: Config{Cluster: c}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"id_ed25519", "env:PW", "file:/pw", "admin"} {
		if strings.Contains(string(out), s) {
			t.Errorf("uploaded cluster file holds %q:\n%s", s, out)
		}
	}
	if c.Hosts[1].SSH.KeyPath == "" {
		t.Error("clusterForUpload changed the run's cluster")
	}
	back, err := config.Parse("upload", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(back.Hosts) != 2 || back.Hosts[1].Address != "192.0.2.11" {
		t.Errorf("hosts %+v", back.Hosts)
	}
}
