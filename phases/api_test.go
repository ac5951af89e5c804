package phases

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/facts"
	"kforge.dev/kforge/host"
	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/internal/controlplanetest"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/reporter"
	"kforge.dev/kforge/services"
	"kforge.dev/kforge/templates"
)

// TestAPIPhasesAgainstARealControlPlane runs wait, upload-config,
// bootstrap-token, addons and mark-control-plane against the real etcd,
// API server, controller manager and scheduler, started with kforge's
// rendered flags. No kubelet runs: the test registers the node itself.
func TestAPIPhasesAgainstARealControlPlane(t *testing.T) {
	cp := controlplanetest.Start(t, controlplanetest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	d := &Data{
		Config:   Config{Cluster: cp.Cluster, Host: cp.Host, Out: reporter.Discard(), Now: time.Now, KforgeBinary: fakeKforgeBinary(t)},
		Services: services.For(cp.Host, facts.Facts{}, ""),
		NodeName: cp.NodeName, AdvertiseAddress: cp.AdvertiseAddress,
		Endpoint: strings.TrimPrefix(cp.Server, "https://"),
	}
	super := cp.Client(t, "super-admin").Kube
	admin := cp.Client(t, "admin").Kube

	t.Run("wait", func(t *testing.T) {
		if _, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("admin.conf before the wait phase: %v, want forbidden", err)
		}
		err := d.waitAPIAndNode(ctx, cp.Server, 30*time.Second, time.Second)
		for _, s := range []string{"node cp1 not ready after 1s", "has not registered", "last lines of kubelet's log"} {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("waiting for an unregistered node: %v, want %q", err, s)
			}
		}
		// admin.conf now has its ClusterRoleBinding.
		if _, err := admin.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
			t.Fatalf("admin.conf after the wait phase: %v", err)
		}
		registerNode(ctx, t, super, cp.NodeName, corev1.ConditionFalse)
		err = d.waitAPIAndNode(ctx, cp.Server, 30*time.Second, time.Second)
		if err == nil || !strings.Contains(err.Error(), "Ready=False (KubeletNotReady: container runtime network not ready") {
			t.Errorf("waiting for a NotReady node: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- d.waitAPIAndNode(ctx, cp.Server, 30*time.Second, 30*time.Second) }()
		time.Sleep(200 * time.Millisecond)
		registerNode(ctx, t, super, cp.NodeName, corev1.ConditionTrue)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	// A kubelet whose node is not Ready kubeletGrace after the API server
	// is restarted once (here under systemd, on a fake host that shares
	// admin.conf); one whose node is Ready at once is left alone, and so is
	// a kubelet kforge does not run (no unit), whose node is waited for.
	t.Run("wait restarts a late kubelet", func(t *testing.T) {
		conf, err := cp.Host.ReadFile(ctx, layout.AdminConf)
		if err != nil {
			t.Fatal(err)
		}
		for _, node := range []struct {
			name           string
			stuck, unit    bool
			restart        bool
			readyAfterward time.Duration
		}{
			{name: "cp-late", stuck: true, unit: true, restart: true},
			{name: "cp-prompt", unit: true},
			{name: "cp-foreign", stuck: true, readyAfterward: kubeletGrace + time.Second},
		} {
			h := fake.New(node.name)
			if err := h.WriteFile(ctx, layout.AdminConf, conf, 0o600); err != nil {
				t.Fatal(err)
			}
			if node.unit {
				if err := h.WriteFile(ctx, layout.KubeletUnit, []byte("[Unit]\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h.On(fake.Answer{}, "systemctl")
			h.OnFunc(func(host.Cmd) fake.Answer {
				registerNode(ctx, t, super, node.name, corev1.ConditionTrue)
				return fake.Answer{}
			}, "systemctl", "restart", "kubelet")
			var withSystemd facts.Facts
			withSystemd.Systemd = true
			late := &Data{
				Config:   Config{Cluster: cp.Cluster, Host: h, Out: reporter.Discard(), Now: time.Now},
				Services: services.For(h, withSystemd, ""),
				NodeName: node.name, AdvertiseAddress: cp.AdvertiseAddress, Endpoint: d.Endpoint,
			}
			registerNode(ctx, t, super, node.name, map[bool]corev1.ConditionStatus{true: corev1.ConditionFalse, false: corev1.ConditionTrue}[node.stuck])
			if node.readyAfterward > 0 {
				go func() {
					time.Sleep(node.readyAfterward)
					if err := setNodeReady(ctx, super, node.name, corev1.ConditionTrue); err != nil {
						t.Error(err)
					}
				}()
			}
			start := time.Now()
			if err := late.waitAPIAndNode(ctx, cp.Server, 30*time.Second, 30*time.Second); err != nil {
				t.Fatalf("%s: %v", node.name, err)
			}
			waited := time.Since(start)
			restarted := slices.Contains(h.Calls(), "systemctl restart kubelet")
			if restarted != node.restart {
				t.Errorf("%s: kubelet restarted %v, want %v; calls %q", node.name, restarted, node.restart, h.Calls())
			}
			if node.stuck && waited < kubeletGrace {
				t.Errorf("%s: done after %s, before the grace of %s", node.name, waited, kubeletGrace)
			}
			if !node.stuck && waited > kubeletGrace {
				t.Errorf("%s: a Ready node took %s", node.name, waited)
			}
		}
	})

	t.Run("control-plane-check", func(t *testing.T) {
		// The harness's controller manager and scheduler renew their leases:
		// with their manifests written in this run, the check waits for that.
		d.Results.ChangedManifests = map[string]bool{"kube-controller-manager.yaml": true, "kube-scheduler.yaml": true}
		if err := d.checkControlPlane(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		d.Results.ChangedManifests = nil
		// A lease whose holder is gone is not renewed.
		leases := super.CoordinationV1().Leases("kube-system")
		holder, now, duration := "gone", metav1.NewMicroTime(time.Now()), int32(15)
		lease := func(name string, renewed time.Time) *coordinationv1.Lease {
			at := metav1.NewMicroTime(renewed)
			l, err := leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, AcquireTime: &now, RenewTime: &at, LeaseDurationSeconds: &duration},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		dead := lease("kforge-test-dead", time.Now())
		stale := lease("kforge-test-stale", time.Now().Add(-time.Minute))
		c := cp.Client(t, "admin")
		left, err := c.WaitLeasesRenewed(ctx, "kube-system", []string{"kforge-test-dead", "kube-scheduler"}, nil, 3*time.Second)
		if err == nil || !slices.Equal(left, []string{"kforge-test-dead"}) || !strings.Contains(err.Error(), "kforge-test-dead: held by gone, not renewed since") {
			t.Errorf("a dead holder: left %q, %v", left, err)
		}
		// Renewed every 100 ms until the wait sees it.
		done := make(chan error, 1)
		go func() {
			_, err := c.WaitLeasesRenewed(ctx, "kube-system", []string{"kforge-test-dead"}, nil, 30*time.Second)
			done <- err
		}()
		renew := time.NewTicker(100 * time.Millisecond)
		defer renew.Stop()
		seen := false
		for i := 0; i < 300 && !seen; i++ {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("a renewed lease: %v", err)
				}
				seen = true
				continue
			case <-renew.C:
			}
			later := metav1.NewMicroTime(time.Now())
			dead.Spec.RenewTime = &later
			if dead, err = leases.Update(ctx, dead, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if !seen {
			t.Fatal("a lease renewed every 100 ms for 30 s was not seen renewed")
		}
		// Held is enough for a component whose manifest did not change, as
		// long as it was renewed within its duration; a stale one is not.
		start := time.Now()
		if left, err := c.WaitLeasesRenewed(ctx, "kube-system", []string{"kforge-test-dead"}, []string{"kforge-test-dead"}, 30*time.Second); err != nil || time.Since(start) > time.Second {
			t.Errorf("a held lease that need not be renewed: left %q, %v after %s", left, err, time.Since(start))
		}
		left, err = c.WaitLeasesRenewed(ctx, "kube-system", []string{stale.Name}, []string{stale.Name}, 2*time.Second)
		if err == nil || !slices.Equal(left, []string{stale.Name}) {
			t.Errorf("a lease not renewed for a minute passed as held: left %q, %v", left, err)
		}
	})

	t.Run("upload-config", func(t *testing.T) {
		kl, err := templates.RenderKubelet(templates.Kubelet{NodeName: cp.NodeName, CgroupDriver: templates.CgroupDriverCgroupfs, ClusterDNS: []string{"10.96.0.10"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := cp.Host.WriteFile(ctx, kl[0].Path, kl[0].Data, kl[0].Mode); err != nil {
			t.Fatal(err)
		}
		d.Cluster.Hosts[0].SSH.KeyPath = "/home/me/.ssh/id_ed25519"
		defer func() { d.Cluster.Hosts[0].SSH.KeyPath = "" }()
		for range 2 {
			if err := uploadConfig(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		cm, err := super.CoreV1().ConfigMaps("kube-system").Get(ctx, ClusterConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		text := cm.Data[ClusterConfigKey]
		c, err := config.Parse("kforge-config", []byte(text))
		if err != nil {
			t.Fatalf("the uploaded cluster file does not load: %v\n%s", err, text)
		}
		if c.Networking != d.Cluster.Networking || c.KubernetesVersion != d.Cluster.KubernetesVersion {
			t.Errorf("uploaded cluster %+v", c)
		}
		if strings.Contains(text, "id_ed25519") {
			t.Errorf("the uploaded cluster file has SSH settings:\n%s", text)
		}
		kcm, err := super.CoreV1().ConfigMaps("kube-system").Get(ctx, KubeletConfigMap, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if kcm.Data[KubeletConfigKey] != string(kl[0].Data) {
			t.Errorf("kubelet-config holds %q", kcm.Data[KubeletConfigKey])
		}
		for _, user := range []string{"system:bootstrap:abcdef", "system:node:cp2"} {
			grp := map[string]string{"system:bootstrap:abcdef": templates.DefaultBootstrapGroup, "system:node:cp2": NodesGroup}[user]
			for _, name := range []string{ClusterConfigMap, KubeletConfigMap} {
				canI(ctx, t, super, user, grp, "get", "configmaps", "kube-system", name, true)
			}
			canI(ctx, t, super, user, grp, "get", "configmaps", "kube-system", "coredns", false)
		}
	})

	var token string
	t.Run("bootstrap-token", func(t *testing.T) {
		if err := bootstrapToken(ctx, d); err != nil {
			t.Fatal(err)
		}
		stored, err := cp.Host.ReadFile(ctx, layout.BootstrapToken)
		if err != nil {
			t.Fatal(err)
		}
		token = strings.TrimSpace(string(stored))
		if !regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`).MatchString(token) {
			t.Fatalf("token %q", token)
		}
		if fi, err := cp.Host.Stat(ctx, layout.BootstrapToken); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", layout.BootstrapToken, fi, err)
		}
		id, secret, _ := strings.Cut(token, ".")
		s, err := super.CoreV1().Secrets("kube-system").Get(ctx, "bootstrap-token-"+id, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Type != "bootstrap.kubernetes.io/token" || string(s.Data["token-secret"]) != secret ||
			string(s.Data["usage-bootstrap-signing"]) != "true" || string(s.Data["usage-bootstrap-authentication"]) != "true" ||
			string(s.Data["auth-extra-groups"]) != "system:bootstrappers:kubeadm:default-node-token" {
			t.Errorf("token Secret %v %q", s.Type, s.Data)
		}
		exp, err := time.Parse(time.RFC3339, string(s.Data["expiration"]))
		if err != nil || exp.Sub(time.Now()) < 23*time.Hour || exp.Sub(time.Now()) > 24*time.Hour {
			t.Errorf("expiration %q, want 24h from now", s.Data["expiration"])
		}

		if !d.Results.TokenExpires.Equal(exp) {
			t.Errorf("the run says the token expires at %s, its Secret at %s", d.Results.TokenExpires, exp)
		}

		// A re-run reuses the valid token, and says when it really expires.
		d.Results.TokenExpires = time.Time{}
		if err := bootstrapToken(ctx, d); err != nil {
			t.Fatal(err)
		}
		if !d.Results.TokenExpires.Equal(exp) {
			t.Errorf("a re-run says the reused token expires at %s, its Secret at %s", d.Results.TokenExpires, exp)
		}
		if again, _ := cp.Host.ReadFile(ctx, layout.BootstrapToken); strings.TrimSpace(string(again)) != token {
			t.Errorf("a re-run replaced token %s with %s", token, again)
		}
		list, err := super.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "type=bootstrap.kubernetes.io/token"})
		if err != nil || len(list.Items) != 1 {
			t.Errorf("bootstrap token Secrets after a re-run: %d, %v", len(list.Items), err)
		}

		// The token authenticates as a joining node, which may get nodes
		// and post CSRs.
		tc := tokenClient(t, cp.Server, cp.Path(layout.PKIDir+"/ca.crt"), token)
		r, err := tc.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if u := r.Status.UserInfo; u.Username != "system:bootstrap:"+id || !slices.Contains(u.Groups, templates.DefaultBootstrapGroup) {
			t.Errorf("the token authenticates as %s %v", u.Username, u.Groups)
		}
		for _, a := range []authorizationv1.ResourceAttributes{
			{Verb: "create", Group: "certificates.k8s.io", Resource: "certificatesigningrequests"},
			{Verb: "create", Group: "certificates.k8s.io", Resource: "certificatesigningrequests", Subresource: "nodeclient"},
			{Verb: "get", Resource: "nodes"},
		} {
			sar, err := tc.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &a}}, metav1.CreateOptions{})
			if err != nil || !sar.Status.Allowed {
				t.Errorf("the token may not %s %s/%s: %v %v", a.Verb, a.Resource, a.Subresource, sar.Status, err)
			}
		}
		for name, roleRef := range map[string]string{
			"kubeadm:get-nodes":                             "kubeadm:get-nodes",
			"kubeadm:kubelet-bootstrap":                     "system:node-bootstrapper",
			"kubeadm:node-autoapprove-bootstrap":            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
			"kubeadm:node-autoapprove-certificate-rotation": "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
		} {
			crb, err := super.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
			if err != nil || crb.RoleRef.Name != roleRef {
				t.Errorf("ClusterRoleBinding %s: %v %v", name, crb, err)
			}
		}
		canI(ctx, t, super, "system:node:cp2", NodesGroup, "create", "certificatesigningrequests/selfnodeclient", "", "", true)

		// cluster-info: anonymous may read it; the bootstrapsigner signs it.
		caPEM, err := cp.Host.ReadFile(ctx, layout.PKIDir+"/ca.crt")
		if err != nil {
			t.Fatal(err)
		}
		var cm *corev1.ConfigMap
		deadline := time.Now().Add(90 * time.Second)
		for {
			cm = anonymousClusterInfo(ctx, t, cp.Server, caPEM)
			if cm.Data["jws-kubeconfig-"+id] != "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		kc, err := clientcmd.Load([]byte(cm.Data["kubeconfig"]))
		if err != nil {
			t.Fatal(err)
		}
		if cl := kc.Clusters[""]; cl == nil || cl.Server != cp.Server || string(cl.CertificateAuthorityData) != string(caPEM) {
			t.Errorf("cluster-info kubeconfig:\n%s", cm.Data["kubeconfig"])
		}
		sig := cm.Data["jws-kubeconfig-"+id]
		if sig == "" {
			t.Fatalf("the controller manager's bootstrapsigner did not sign cluster-info for token %s within 90s: %v", id, cm.Data)
		}
		if !jwsValid(sig, cm.Data["kubeconfig"], id, secret) {
			t.Errorf("jws-kubeconfig-%s %q does not verify with the token", id, sig)
		}

		join, err := d.JoinCommand(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hash, _ := certs.CAHash(caPEM)
		if want := fmt.Sprintf("kforge join %s --token %s --discovery-token-ca-cert-hash %s", d.Endpoint, token, hash); join != want {
			t.Errorf("join command %q, want %q", join, want)
		}
	})

	t.Run("bootstrap-token replaces an expiring token", func(t *testing.T) {
		if token == "" {
			t.Skip("no token")
		}
		d2 := *d
		d2.Now = func() time.Time { return time.Now().Add(23*time.Hour + 30*time.Minute) }
		if _, err := d2.ensureBootstrapToken(ctx, cp.Client(t, "admin")); err != nil {
			t.Fatal(err)
		}
		if again, _ := cp.Host.ReadFile(ctx, layout.BootstrapToken); strings.TrimSpace(string(again)) == token {
			t.Error("a token with 30 minutes left was reused")
		}
	})

	t.Run("addons", func(t *testing.T) {
		first, err := d.applyAddons(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(first) < 10 {
			t.Fatalf("applied only %v", first)
		}
		second, err := d.applyAddons(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range second {
			if a.Changed {
				t.Errorf("applying the addons again changed %s", a)
			}
		}
		svc, err := super.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
		if err != nil || svc.Spec.ClusterIP != "10.96.0.10" {
			t.Fatalf("kube-dns: %v %v", svc.Spec.ClusterIP, err)
		}
		if _, err := super.AppsV1().DaemonSets("kube-system").Get(ctx, "kube-proxy", metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		dep, err := super.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil || *dep.Spec.Replicas != 2 {
			t.Fatalf("coredns: %v", err)
		}
		canI(ctx, t, super, "system:bootstrap:abcdef", templates.DefaultBootstrapGroup, "get", "configmaps", "kube-system", "kube-proxy", true)
		// kube-proxy's ServiceAccount may do what kube-proxy does.
		canISA(ctx, t, super, "kube-system", "kube-proxy", "list", "endpointslices", "discovery.k8s.io")
		canISA(ctx, t, super, "kube-system", "coredns", "watch", "endpointslices", "discovery.k8s.io")
	})

	t.Run("mark-control-plane", func(t *testing.T) {
		for range 2 {
			if err := markControlPlane(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		n, err := super.CoreV1().Nodes().Get(ctx, cp.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := n.Labels[ControlPlaneLabel]; !ok || v != "" {
			t.Errorf("labels %v", n.Labels)
		}
		count := 0
		for _, tt := range n.Spec.Taints {
			if tt.MatchTaint(&ControlPlaneTaint) {
				count++
			}
		}
		if count != 1 {
			t.Errorf("taints %v, want one %s", n.Spec.Taints, ControlPlaneTaint.ToString())
		}
		d.Schedulable = true
		defer func() { d.Schedulable = false }()
		if err := markControlPlane(ctx, d); err != nil {
			t.Fatal(err)
		}
		n, err = super.CoreV1().Nodes().Get(ctx, cp.NodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range n.Spec.Taints {
			if tt.MatchTaint(&ControlPlaneTaint) {
				t.Errorf("a schedulable control plane keeps %s", tt.ToString())
			}
		}
		if _, ok := n.Labels[ControlPlaneLabel]; !ok {
			t.Error("a schedulable control plane lost its label")
		}
	})
}

// registerNode creates or updates the Node as a kubelet would, with its
// Ready condition.
func registerNode(ctx context.Context, t *testing.T, c kubernetes.Interface, name string, ready corev1.ConditionStatus) {
	t.Helper()
	if err := setNodeReady(ctx, c, name, ready); err != nil {
		t.Fatal(err)
	}
}

// setNodeReady creates the Node called name if needed and sets its Ready
// condition, as a kubelet does.
func setNodeReady(ctx context.Context, c kubernetes.Interface, name string, ready corev1.ConditionStatus) error {
	reason, msg := "KubeletReady", "kubelet is posting ready status"
	if ready != corev1.ConditionTrue {
		reason, msg = "KubeletNotReady", "container runtime network not ready: cni plugin not initialized"
	}
	// The controller manager updates a new Node too (its pod CIDR): retry
	// the status update on a conflict, as a kubelet does.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			n, err = c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		}
		if err != nil {
			return err
		}
		now := metav1.Now()
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}}
		_, err = c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	return err
}

// canI asks the API server whether a user in a group may do something.
func canI(ctx context.Context, t *testing.T, c kubernetes.Interface, user, group, verb, resource, ns, name string, want bool) {
	t.Helper()
	res, sub, _ := strings.Cut(resource, "/")
	apiGroup := ""
	if res == "certificatesigningrequests" {
		apiGroup = "certificates.k8s.io"
	}
	sar, err := c.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: []string{group, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: apiGroup, Resource: res, Subresource: sub, Namespace: ns, Name: name},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sar.Status.Allowed != want {
		t.Errorf("%s (%s) %s %s %s/%s: allowed %v, want %v", user, group, verb, resource, ns, name, sar.Status.Allowed, want)
	}
}

func canISA(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, sa, verb, resource, group string) {
	t.Helper()
	sar, err := c.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "system:serviceaccount:" + ns + ":" + sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sar.Status.Allowed {
		t.Errorf("ServiceAccount %s/%s may not %s %s", ns, sa, verb, resource)
	}
}

func tokenClient(t *testing.T, server, caFile, token string) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(&rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// anonymousClusterInfo gets cluster-info without credentials, as a joining
// node does before it trusts the API server (here it already checks the
// CA).
func anonymousClusterInfo(ctx context.Context, t *testing.T, server string, caPEM []byte) *corev1.ConfigMap {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/api/v1/namespaces/kube-public/configmaps/cluster-info", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("anonymous GET cluster-info: HTTP %d %s", resp.StatusCode, body)
	}
	var cm corev1.ConfigMap
	if err := json.Unmarshal(body, &cm); err != nil {
		t.Fatal(err)
	}
	return &cm
}

// jwsValid checks a detached HS256 JWS ("header..signature") over content,
// keyed with the token's secret, as joining nodes check cluster-info.
func jwsValid(detached, content, id, secret string) bool {
	header, sig, ok := strings.Cut(detached, "..")
	if !ok {
		return false
	}
	h, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil || !strings.Contains(string(h), `"kid":"`+id+`"`) || !strings.Contains(string(h), `"alg":"HS256"`) {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(header + "." + base64.RawURLEncoding.EncodeToString([]byte(content))))
	want := base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(sig), []byte(want))
}
