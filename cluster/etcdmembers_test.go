package cluster

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/host/fake"
)

// TestEtcdMembers reads etcdctl's JSON of a three-member cluster: a leader,
// a follower that does not answer, and a learner. The failing health
// command exits non-zero and still counts for the others.
func TestEtcdMembers(t *testing.T) {
	h := fake.New("cp1")
	h.OnFunc(func(c host.Cmd) fake.Answer {
		args := strings.Join(c.Argv, " ")
		switch {
		case strings.Contains(args, "member list"):
			return fake.Answer{Stdout: `{"header":{"cluster_id":1,"member_id":10,"raft_term":3},"members":[` +
				`{"ID":10,"name":"cp1","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]},` +
				`{"ID":18446744073709551615,"name":"cp2","peerURLs":["https://10.0.0.2:2380"],"clientURLs":["https://10.0.0.2:2379"]},` +
				`{"ID":12,"name":"cp3","peerURLs":["https://10.0.0.3:2380"],"clientURLs":["https://10.0.0.3:2379"],"isLearner":true}]}`}
		case strings.Contains(args, "endpoint status"):
			return fake.Answer{ExitCode: 1, Stdout: `[{"Endpoint":"https://10.0.0.1:2379","Status":{"header":{"member_id":10},"version":"3.7.0","dbSize":2097152,"leader":10,"raftIndex":99,"raftTerm":3}},` +
				`{"Endpoint":"https://10.0.0.3:2379","Status":{"header":{"member_id":12},"version":"3.7.0","dbSize":1048576,"leader":10,"raftIndex":98,"raftTerm":3}}]`}
		case strings.Contains(args, "endpoint health"):
			return fake.Answer{ExitCode: 1, Stdout: `[{"endpoint":"https://10.0.0.1:2379","health":true,"took":"2ms"},` +
				`{"endpoint":"https://10.0.0.2:2379","health":false,"took":"5s","error":"context deadline exceeded"},` +
				`{"endpoint":"https://10.0.0.3:2379","health":true,"took":"3ms"}]`}
		}
		return fake.Answer{ExitCode: 127}
	}, "crictl", "exec")
	members, err := etcdMembers(context.Background(), h, "c0ffee", "https://127.0.0.1:2379")
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 3 {
		t.Fatalf("members %+v", members)
	}
	leader, down, learner := members[0], members[1], members[2]
	if leader.ID != "a" || !leader.Leader || !leader.Healthy || leader.DBSize != 2097152 || leader.RaftIndex != 99 || leader.Version != "3.7.0" {
		t.Errorf("leader %+v", leader)
	}
	if down.ID != "ffffffffffffffff" || down.Healthy || down.Leader || down.Error != "context deadline exceeded" {
		t.Errorf("the member that does not answer: %+v", down)
	}
	if !learner.Learner || learner.Leader || !learner.Healthy {
		t.Errorf("learner %+v", learner)
	}
	for _, c := range h.Calls() {
		if !strings.Contains(c, "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt") || !strings.Contains(c, "--endpoints=https://127.0.0.1:2379") {
			t.Errorf("etcdctl ran as %s", c)
		}
	}
	var out bytes.Buffer
	printMembers(&out, members)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "leader") || !strings.Contains(lines[1], "2.0 MiB") ||
		!strings.Contains(lines[2], "unhealthy") || !strings.Contains(lines[3], "learner") {
		t.Errorf("table:\n%s", out.String())
	}
}
