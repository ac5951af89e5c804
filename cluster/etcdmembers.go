package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
)

// EtcdMembersOptions are the inputs of `kforge etcd members`.
type EtcdMembersOptions struct {
	Connect ConnectOptions
	// ConfigFile asks the cluster file's control plane, over SSH.
	ConfigFile string
	JSON       bool
	Out        io.Writer
}

// EtcdMember is one member of the cluster's etcd, as etcdctl reports it.
type EtcdMember struct {
	ID         string   `json:"id"` // hex, as etcdctl prints it
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	Learner    bool     `json:"learner"`
	Leader     bool     `json:"leader"`
	Healthy    bool     `json:"healthy"`
	// Error is why the member is not healthy.
	Error     string `json:"error,omitempty"`
	Version   string `json:"version,omitempty"`
	DBSize    int64  `json:"dbSize,omitempty"`
	RaftTerm  uint64 `json:"raftTerm,omitempty"`
	RaftIndex uint64 `json:"raftIndex,omitempty"`
}

// EtcdMembers lists the members of the cluster's etcd with their health,
// the leader and each one's size and raft position, asking the etcdctl of
// the cluster's own etcd image in the running etcd pod on the control
// plane (`member list`, `endpoint status --cluster`, `endpoint health
// --cluster`). It fails, after printing, when a member is not healthy.
func EtcdMembers(ctx context.Context, o EtcdMembersOptions) error {
	members, err := listEtcdMembers(ctx, o.Connect, o.ConfigFile)
	if err != nil {
		return err
	}
	if o.JSON {
		if err := writeJSON(o.Out, struct {
			Members []EtcdMember `json:"members"`
		}{members}); err != nil {
			return err
		}
	} else {
		printMembers(o.Out, members)
	}
	var errs []error
	for _, m := range members {
		if !m.Healthy {
			errs = append(errs, fmt.Errorf("etcd member %s (%s) is not healthy: %s", m.Name, m.ID, m.Error))
		}
	}
	return errors.Join(errs...)
}

// listEtcdMembers asks the etcd of the cluster file's first control plane
// that answers (or of this machine) for its members and their health.
func listEtcdMembers(ctx context.Context, connect ConnectOptions, file string) ([]EtcdMember, error) {
	h, e, closeAll, err := etcdControlPlane(ctx, &EtcdSnapshotOptions{Connect: connect, ConfigFile: file})
	if err != nil {
		return nil, err
	}
	defer closeAll()
	id, err := runningContainer(ctx, h, "etcd")
	if err != nil {
		return nil, err
	}
	return etcdMembers(ctx, h, id, e.clientURL)
}

// etcdctl runs the pod's etcdctl with the health-check client's
// certificate; a non-zero exit still returns what it printed.
func etcdctl(ctx context.Context, h host.Host, container, endpoint string, args ...string) ([]byte, error) {
	pki := layout.PKIDir + "/etcd/"
	argv := append([]string{"crictl", "exec", container, "etcdctl", "--endpoints=" + endpoint,
		"--cacert=" + pki + "ca.crt", "--cert=" + pki + "healthcheck-client.crt", "--key=" + pki + "healthcheck-client.key"}, args...)
	res, err := h.Run(ctx, host.Cmd{Sudo: true, ReadOnly: true, Argv: argv})
	return res.Stdout, err
}

func etcdMembers(ctx context.Context, h host.Host, container, endpoint string) ([]EtcdMember, error) {
	out, err := etcdctl(ctx, h, container, endpoint, "member", "list", "-w", "json")
	if err != nil {
		return nil, fmt.Errorf("etcdctl member list on %s: %w", h.Name(), err)
	}
	var list struct {
		Members []struct {
			ID         uint64   `json:"ID"`
			Name       string   `json:"name"`
			PeerURLs   []string `json:"peerURLs"`
			ClientURLs []string `json:"clientURLs"`
			IsLearner  bool     `json:"isLearner"`
		} `json:"members"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("etcdctl member list on %s printed %q: %w", h.Name(), out, err)
	}
	// A failing endpoint makes these exit non-zero; what they printed
	// for the others still counts.
	statusOut, _ := etcdctl(ctx, h, container, endpoint, "endpoint", "status", "--cluster", "-w", "json")
	var statuses []struct {
		Endpoint string `json:"Endpoint"`
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Version   string `json:"version"`
			DBSize    int64  `json:"dbSize"`
			Leader    uint64 `json:"leader"`
			RaftIndex uint64 `json:"raftIndex"`
			RaftTerm  uint64 `json:"raftTerm"`
		} `json:"Status"`
	}
	_ = json.Unmarshal(statusOut, &statuses)
	healthOut, _ := etcdctl(ctx, h, container, endpoint, "endpoint", "health", "--cluster", "-w", "json")
	var health []struct {
		Endpoint string `json:"endpoint"`
		Health   bool   `json:"health"`
		Error    string `json:"error"`
	}
	_ = json.Unmarshal(healthOut, &health)

	var members []EtcdMember
	for _, m := range list.Members {
		em := EtcdMember{
			ID: strconv.FormatUint(m.ID, 16), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, Learner: m.IsLearner,
			Error: "no answer to etcdctl endpoint health",
		}
		for _, s := range statuses {
			if s.Status.Header.MemberID == m.ID {
				em.Version, em.DBSize, em.RaftTerm, em.RaftIndex = s.Status.Version, s.Status.DBSize, s.Status.RaftTerm, s.Status.RaftIndex
				em.Leader = s.Status.Leader == m.ID
			}
		}
		for _, hl := range health {
			if slices.Contains(m.ClientURLs, hl.Endpoint) {
				em.Healthy, em.Error = hl.Health, hl.Error
			}
		}
		if len(m.ClientURLs) == 0 {
			// A member added but not started has no client URL yet.
			em.Error = "not started: no client URL"
		}
		members = append(members, em)
	}
	return members, nil
}

func printMembers(w io.Writer, members []EtcdMember) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPEER URLS\tCLIENT URLS\tROLE\tHEALTH\tDB SIZE\tRAFT TERM/INDEX\tVERSION")
	for _, m := range members {
		role := "follower"
		switch {
		case m.Learner:
			role = "learner"
		case m.Leader:
			role = "leader"
		}
		health := "ok"
		if !m.Healthy {
			health = "unhealthy"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", m.ID, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","),
			role, health, reporter.MiB(m.DBSize), m.RaftTerm, m.RaftIndex, m.Version)
	}
	tw.Flush()
}
