package discovery

import (
	"context"
	"errors"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Names in the bootstrap kubeconfig, as kubeadm writes them.
const (
	BootstrapCluster = "kubernetes"
	BootstrapUser    = "tls-bootstrap-token-user"
)

// RESTConfig is a client configuration that authenticates with the token
// against server, trusting caPEM.
func RESTConfig(server string, caPEM []byte, t Token) *rest.Config {
	return &rest.Config{
		Host:            server,
		BearerToken:     t.String(),
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		Timeout:         attemptTimeout,
		UserAgent:       "kforge-join",
	}
}

// BootstrapKubeconfig is the kubelet's bootstrap kubeconfig: the cluster
// (server and CA, inline) and the token as its credentials.
func BootstrapKubeconfig(r *Result, t Token) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[BootstrapCluster] = &clientcmdapi.Cluster{Server: r.Server, CertificateAuthorityData: r.CACert}
	cfg.AuthInfos[BootstrapUser] = &clientcmdapi.AuthInfo{Token: t.String()}
	name := BootstrapUser + "@" + BootstrapCluster
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: BootstrapCluster, AuthInfo: BootstrapUser}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}

// whoAmI asks the API server who the token is. The token's signature
// proved that it was a signing token once; this proves that it still
// authenticates, at the server the kubelet will use.
func whoAmI(ctx context.Context, server string, caPEM []byte, t Token) (string, []string, error) {
	c, err := kubernetes.NewForConfig(RESTConfig(server, caPEM, t))
	if err != nil {
		return "", nil, fmt.Errorf("client for %s: %w", server, err)
	}
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	switch {
	case err == nil:
		u := r.Status.UserInfo
		if !strings.HasPrefix(u.Username, "system:bootstrap:") {
			return "", nil, fmt.Errorf("%w: %s takes token id %s for %q, not a bootstrap token's user system:bootstrap:%s", ErrTokenRejected, server, t.ID, u.Username, t.ID)
		}
		return u.Username, u.Groups, nil
	case apierrors.IsUnauthorized(err):
		return "", nil, fmt.Errorf("%w: %s does not accept token id %s (HTTP 401), though cluster-info is signed with it: "+
			"the token has just expired or been deleted, or it is not meant for authentication. "+
			"Re-run kforge init on the control plane for a new join command", ErrTokenRejected, server, t.ID)
	case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
		// Authenticated: only the review itself is not allowed or served.
		return "system:bootstrap:" + t.ID, nil, nil
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return "", nil, fmt.Errorf("%w: %s answered the token check with %v", ErrTokenRejected, server, err)
	}
	return "", nil, fmt.Errorf("%w: cluster-info names the API server %s for the kubelet, and this machine cannot reach it: %v", ErrUnreachable, server, err)
}
