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
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"kforge.dev/kforge/certs"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/kube"
	"kforge.dev/kforge/layout"
	"kforge.dev/kforge/templates"
)

// Bootstrap tokens, as kubeadm makes them.
const (
	// BootstrapTokenTTL is how long a new token lasts.
	BootstrapTokenTTL = 24 * time.Hour
	// bootstrapTokenMinLeft is how long a stored token must still be valid
	// to be reused.
	bootstrapTokenMinLeft = time.Hour

	bootstrapTokenPrefix = "bootstrap-token-"
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
	secrets := c.Kube.CoreV1().Secrets(metav1.NamespaceSystem)
	stored, err := d.Host.ReadFile(ctx, layout.BootstrapToken)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", layout.BootstrapToken, err)
	}
	if m := tokenPattern.FindStringSubmatch(strings.TrimSpace(string(stored))); m != nil {
		s, err := secrets.Get(ctx, bootstrapTokenPrefix+m[1], metav1.GetOptions{})
		switch {
		case err == nil && d.tokenValid(s, m[2]):
			d.Out.Logf("reusing bootstrap token %s (expires %s)", m[1], s.Data["expiration"])
			d.Results.TokenExpires, _ = time.Parse(time.RFC3339, string(s.Data["expiration"]))
			return m[0], nil
		case err != nil && !apierrors.IsNotFound(err):
			return "", fmt.Errorf("bootstrap token %s: %w", m[1], err)
		}
	}
	token, exp, err := d.createToken(ctx, c, BootstrapTokenTTL, "made by kforge init for joining nodes")
	if err != nil {
		return "", err
	}
	if err := d.Host.WriteFile(ctx, layout.BootstrapToken, []byte(token+"\n"), layout.SecretMode); err != nil {
		return "", err
	}
	d.Out.Logf("created bootstrap token %s (expires %s)", strings.Split(token, ".")[0], exp.Format(time.RFC3339))
	d.Results.TokenExpires = exp
	return token, nil
}

// createToken creates a bootstrap token Secret that expires after ttl and
// returns the token and its expiry.
func (d *Data) createToken(ctx context.Context, c *kube.Client, ttl time.Duration, description string) (string, time.Time, error) {
	secrets := c.Kube.CoreV1().Secrets(metav1.NamespaceSystem)
	for range 3 {
		id, secret, err := newToken()
		if err != nil {
			return "", time.Time{}, err
		}
		exp := d.Now().Add(ttl).UTC().Truncate(time.Second)
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: bootstrapTokenPrefix + id, Namespace: metav1.NamespaceSystem},
			Type:       corev1.SecretTypeBootstrapToken,
			StringData: map[string]string{
				"description":                    description,
				"token-id":                       id,
				"token-secret":                   secret,
				"expiration":                     exp.Format(time.RFC3339),
				"usage-bootstrap-authentication": "true",
				"usage-bootstrap-signing":        "true",
				"auth-extra-groups":              templates.DefaultBootstrapGroup,
			},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return "", time.Time{}, fmt.Errorf("bootstrap token %s: %w", id, err)
		}
		return id + "." + secret, exp, nil
	}
	return "", time.Time{}, errors.New("bootstrap token: three new token ids were all taken")
}

// CreateToken creates a bootstrap token that expires after ttl for joins
// by hand (kforge token create); it is not stored on the host.
func (d *Data) CreateToken(ctx context.Context, ttl time.Duration) (string, time.Time, error) {
	c, err := d.adminClient(ctx, "")
	if err != nil {
		return "", time.Time{}, err
	}
	return d.createToken(ctx, c, ttl, "made by kforge token create")
}

// RunTokenTTL is how long the token of one init -f run's joins lasts; the
// run deletes it as soon as its joins end.
const RunTokenTTL = time.Hour

// RunToken creates a bootstrap token for this run's joins alone: it is
// not stored on the host, expires after RunTokenTTL, and the returned
// function deletes it (the run calls it when its joins end, whatever
// their outcome).
func (d *Data) RunToken(ctx context.Context) (string, func(context.Context) error, error) {
	c, err := d.adminClient(ctx, "")
	if err != nil {
		return "", nil, err
	}
	token, exp, err := d.createToken(ctx, c, RunTokenTTL, "made by kforge init -f for one run's joins; deleted when they end")
	if err != nil {
		return "", nil, err
	}
	id := strings.Split(token, ".")[0]
	d.Out.Logf("created bootstrap token %s for this run's joins (expires %s)", id, exp.Format(time.RFC3339))
	del := func(ctx context.Context) error {
		err := c.Kube.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, bootstrapTokenPrefix+id, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete this run's bootstrap token %s (it expires by itself at %s): %w", id, exp.Format(time.RFC3339), err)
		}
		d.Out.Logf("deleted bootstrap token %s", id)
		return nil
	}
	return token, del, nil
}

func (d *Data) tokenValid(s *corev1.Secret, secret string) bool {
	if s.Type != corev1.SecretTypeBootstrapToken || string(s.Data["token-secret"]) != secret ||
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
	bootstrappers := kube.Groups(templates.DefaultBootstrapGroup)
	return d.apply(ctx, c, "bootstrap-token RBAC",
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm:get-nodes"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}},
		},
		kube.ClusterRoleBinding("kubeadm:get-nodes", "kubeadm:get-nodes", bootstrappers...),
		kube.ClusterRoleBinding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", bootstrappers...),
		kube.ClusterRoleBinding("kubeadm:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", bootstrappers...),
		kube.ClusterRoleBinding("kubeadm:node-autoapprove-certificate-rotation", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", kube.Groups(NodesGroup)...),
	)
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
	return d.apply(ctx, c, "cluster-info",
		kube.ConfigMap(metav1.NamespacePublic, ClusterInfoConfigMap, map[string]string{"kubeconfig": string(kc)}),
		kube.ConfigMapReader(metav1.NamespacePublic, name, ClusterInfoConfigMap),
		kube.RoleBinding(metav1.NamespacePublic, name, name, rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "system:anonymous"}),
	)
}

func (d *Data) clusterInfoKubeconfig(ctx context.Context) ([]byte, error) {
	data, err := d.Host.ReadFile(ctx, layout.AdminConf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", layout.AdminConf, err)
	}
	admin, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", layout.AdminConf, err)
	}
	kctx := admin.Contexts[admin.CurrentContext]
	if kctx == nil || admin.Clusters[kctx.Cluster] == nil {
		return nil, fmt.Errorf("%s: the current context has no cluster", layout.AdminConf)
	}
	cluster := admin.Clusters[kctx.Cluster]
	if len(cluster.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("%s: the cluster has no inline CA", layout.AdminConf)
	}
	out := clientcmdapi.NewConfig()
	out.Clusters[""] = &clientcmdapi.Cluster{Server: cluster.Server, CertificateAuthorityData: cluster.CertificateAuthorityData}
	return clientcmd.Write(*out)
}

// JoinCommand is the command that joins a node to the cluster with the
// stored bootstrap token, pinning the cluster CA by the hash of its public
// key.
func (d *Data) JoinCommand(ctx context.Context) (string, error) {
	token, err := d.Host.ReadFile(ctx, layout.BootstrapToken)
	if err != nil {
		return "", fmt.Errorf("no bootstrap token on %s (%w): run `kforge init phase bootstrap-token`", d.Host.Name(), err)
	}
	ca, err := d.Host.ReadFile(ctx, layout.CACert)
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

// JoinArgs are the arguments of `kforge join` without the token, which
// reaches the worker on its standard input (--token-stdin): the endpoint
// and the CA's hash.
func (d *Data) JoinArgs(ctx context.Context) ([]string, error) {
	ca, err := d.Host.ReadFile(ctx, layout.CACert)
	if err != nil {
		return nil, fmt.Errorf("cluster CA on %s: %w", d.Host.Name(), err)
	}
	hash, err := certs.CAHash(ca)
	if err != nil {
		return nil, err
	}
	return []string{d.Endpoint, "--discovery-token-ca-cert-hash", hash, "--" + TokenStdinFlag}, nil
}

// TokenStdinFlag makes `kforge join` read its token from the first line of
// standard input, so that it is never on a command line.
const TokenStdinFlag = "token-stdin"
