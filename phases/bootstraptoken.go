package phases

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/templates"
)

// Bootstrap tokens, as kubeadm makes them.
const (
	// BootstrapTokenPath keeps the token init made (0600), so that a re-run
	// reuses it while it is valid and the join command can be printed.
	BootstrapTokenPath = KforgeStateDir + "/bootstrap-token"
	// BootstrapTokenTTL is how long a new token lasts.
	BootstrapTokenTTL = 24 * time.Hour
	// bootstrapTokenMinLeft is how long a stored token must still be valid
	// to be reused.
	bootstrapTokenMinLeft = time.Hour

	bootstrapTokenSecretType = corev1.SecretType("bootstrap.kubernetes.io/token")
	bootstrapTokenPrefix     = "bootstrap-token-"
	namespaceKubePublic      = "kube-public"
	// ClusterInfoConfigMap in kube-public holds a kubeconfig with the CA
	// and the endpoint; the controller manager's bootstrapsigner signs it
	// with every bootstrap token (key jws-kubeconfig-<token id>).
	ClusterInfoConfigMap = "cluster-info"
)

var tokenPattern = discovery.TokenRegexp()

// bootstrapToken makes joining possible: a bootstrap token (a Secret in
// kube-system, 24 h, for signing and authentication, in the group
// system:bootstrappers:kubeadm:default-node-token), kept on the host at
// /var/lib/kforge/bootstrap-token and reused while valid; the RBAC kubeadm
// sets up for TLS bootstrap and CSR auto-approval; and the cluster-info
// ConfigMap in kube-public that anonymous users may read.
func bootstrapToken(ctx context.Context, d *Data) error {
	c, err := d.adminClient(ctx, "")
	if err != nil {
		return err
	}
	if _, err := d.ensureBootstrapToken(ctx, c); err != nil {
		return err
	}
	if err := d.bootstrapRBAC(ctx, c); err != nil {
		return err
	}
	return d.clusterInfo(ctx, c)
}

// ensureBootstrapToken returns the stored token when its Secret is in the
// cluster and valid for at least another hour, and otherwise creates a new
// one and stores it.
func (d *Data) ensureBootstrapToken(ctx context.Context, c *kube.Client) (string, error) {
	secrets := c.Kube.CoreV1().Secrets(namespaceKubeSystem)
	stored, err := d.Host.ReadFile(ctx, BootstrapTokenPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s on %s: %w", BootstrapTokenPath, d.Host.Name(), err)
	}
	if m := tokenPattern.FindStringSubmatch(strings.TrimSpace(string(stored))); m != nil {
		s, err := secrets.Get(ctx, bootstrapTokenPrefix+m[1], metav1.GetOptions{})
		switch {
		case err == nil && d.tokenValid(s, m[2]):
			d.Out.Logf("reusing bootstrap token %s (expires %s)", m[1], s.Data["expiration"])
			return m[0], nil
		case err != nil && !apierrors.IsNotFound(err):
			return "", fmt.Errorf("bootstrap token %s: %w", m[1], err)
		}
	}
	for range 3 {
		id, secret, err := newToken()
		if err != nil {
			return "", err
		}
		exp := d.Now().Add(BootstrapTokenTTL).UTC().Format(time.RFC3339)
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: bootstrapTokenPrefix + id, Namespace: namespaceKubeSystem},
			Type:       bootstrapTokenSecretType,
			StringData: map[string]string{
				"description":                    "made by kforge init for joining nodes",
				"token-id":                       id,
				"token-secret":                   secret,
				"expiration":                     exp,
				"usage-bootstrap-authentication": "true",
				"usage-bootstrap-signing":        "true",
				"auth-extra-groups":              templates.DefaultBootstrapGroup,
			},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("bootstrap token %s: %w", id, err)
		}
		token := id + "." + secret
		if err := d.Host.WriteFile(ctx, BootstrapTokenPath, []byte(token+"\n"), 0o600); err != nil {
			return "", err
		}
		d.Out.Logf("created bootstrap token %s (expires %s)", id, exp)
		return token, nil
	}
	return "", errors.New("bootstrap token: three new token ids were all taken")
}

func (d *Data) tokenValid(s *corev1.Secret, secret string) bool {
	if s.Type != bootstrapTokenSecretType || string(s.Data["token-secret"]) != secret ||
		string(s.Data["usage-bootstrap-authentication"]) != "true" || string(s.Data["usage-bootstrap-signing"]) != "true" {
		return false
	}
	exp := string(s.Data["expiration"])
	if exp == "" {
		return true
	}
	t, err := time.Parse(time.RFC3339, exp)
	return err == nil && t.After(d.Now().Add(bootstrapTokenMinLeft))
}

// newToken returns a random token id and secret from [a-z0-9].
func newToken() (id, secret string, err error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, 22)
	buf := make([]byte, 64)
	for len(out) < 22 {
		if _, err := rand.Read(buf); err != nil {
			return "", "", fmt.Errorf("bootstrap token: %w", err)
		}
		for _, b := range buf {
			// 252 = 7*36: rejecting larger bytes keeps every character
			// equally likely.
			if b < 252 && len(out) < 22 {
				out = append(out, alphabet[b%36])
			}
		}
	}
	return string(out[:6]), string(out[6:]), nil
}

// bootstrapRBAC lets bootstrap tokens get nodes and post CSRs, has the
// controller manager approve their CSRs and the nodes' certificate
// renewals, with kubeadm's ClusterRoleBindings.
func (d *Data) bootstrapRBAC(ctx context.Context, c *kube.Client) error {
	group := templates.DefaultBootstrapGroup
	crb := func(name, clusterRole, subject string) map[string]any {
		return object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", name, map[string]any{
			"roleRef": roleRef("ClusterRole", clusterRole), "subjects": groups(subject),
		})
	}
	_, err := d.applyObjects(ctx, c, "bootstrap-token RBAC",
		object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "kubeadm:get-nodes", map[string]any{
			"rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"nodes"}, "verbs": []any{"get"}}},
		}),
		crb("kubeadm:get-nodes", "kubeadm:get-nodes", group),
		crb("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", group),
		crb("kubeadm:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", group),
		crb("kubeadm:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", NodesGroup),
	)
	return err
}

// clusterInfo publishes the cluster-info ConfigMap in kube-public: a
// kubeconfig with only the cluster (CA and endpoint) of admin.conf, which
// anonymous users may get so that joining nodes can verify it against the
// token's signature and the CA hash.
func (d *Data) clusterInfo(ctx context.Context, c *kube.Client) error {
	kc, err := d.clusterInfoKubeconfig(ctx)
	if err != nil {
		return err
	}
	name := "kubeadm:bootstrap-signer-clusterinfo"
	_, err = d.applyObjects(ctx, c, "cluster-info",
		object("v1", "ConfigMap", namespaceKubePublic, ClusterInfoConfigMap, map[string]any{
			"data": map[string]any{"kubeconfig": string(kc)},
		}),
		object("rbac.authorization.k8s.io/v1", "Role", namespaceKubePublic, name, map[string]any{
			"rules": []any{map[string]any{
				"apiGroups": []any{""}, "resources": []any{"configmaps"},
				"resourceNames": []any{ClusterInfoConfigMap}, "verbs": []any{"get"},
			}},
		}),
		object("rbac.authorization.k8s.io/v1", "RoleBinding", namespaceKubePublic, name, map[string]any{
			"roleRef":  roleRef("Role", name),
			"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:anonymous"}},
		}),
	)
	return err
}

func (d *Data) clusterInfoKubeconfig(ctx context.Context) ([]byte, error) {
	data, err := d.Host.ReadFile(ctx, AdminConf)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", AdminConf, d.Host.Name(), err)
	}
	admin, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", AdminConf, err)
	}
	kctx := admin.Contexts[admin.CurrentContext]
	if kctx == nil || admin.Clusters[kctx.Cluster] == nil {
		return nil, fmt.Errorf("%s: the current context has no cluster", AdminConf)
	}
	cluster := admin.Clusters[kctx.Cluster]
	if len(cluster.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("%s: the cluster has no inline CA", AdminConf)
	}
	out := clientcmdapi.NewConfig()
	out.Clusters[""] = &clientcmdapi.Cluster{Server: cluster.Server, CertificateAuthorityData: cluster.CertificateAuthorityData}
	return clientcmd.Write(*out)
}

// JoinCommand is the command that joins a node to the cluster with the
// stored bootstrap token, pinning the cluster CA by the hash of its public
// key.
func (d *Data) JoinCommand(ctx context.Context) (string, error) {
	token, err := d.Host.ReadFile(ctx, BootstrapTokenPath)
	if err != nil {
		return "", fmt.Errorf("no bootstrap token on %s (%w): run `kforge init phase bootstrap-token`", d.Host.Name(), err)
	}
	ca, err := d.Host.ReadFile(ctx, PKIDir+"/ca.crt")
	if err != nil {
		return "", fmt.Errorf("cluster CA on %s: %w", d.Host.Name(), err)
	}
	return JoinCommand(d.Endpoint, strings.TrimSpace(string(token)), ca)
}

// JoinCommand returns `kforge join ENDPOINT --token TOKEN
// --discovery-token-ca-cert-hash sha256:...` for a token and the cluster
// CA's certificate.
func JoinCommand(endpoint, token string, caPEM []byte) (string, error) {
	if !tokenPattern.MatchString(token) {
		return "", fmt.Errorf("bootstrap token %q is not [a-z0-9]{6}.[a-z0-9]{16}", token)
	}
	hash, err := certs.CAHash(caPEM)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("kforge join %s --token %s --discovery-token-ca-cert-hash %s", endpoint, token, hash), nil
}
