package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"kforge.dev/kforge/approver"
)

func init() { commands = append(commands, newCSRApprover) }

// newCSRApprover is the hidden command that kforge's image runs in
// kube-system as the kubelet-serving certificate approver.
func newCSRApprover(*globalOptions) *cobra.Command {
	var kubeconfig, namespace string
	cmd := &cobra.Command{
		Use:    "csr-approver",
		Short:  "Approve kubelet serving certificate requests that name only the node's own addresses; deny the rest",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := rest.InClusterConfig()
			if kubeconfig != "" {
				cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
			}
			if err != nil {
				return fmt.Errorf("csr-approver: the API server's address and credentials (in a pod, or --kubeconfig): %w", err)
			}
			cfg.UserAgent = "kforge-csr-approver"
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			identity, err := os.Hostname()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return approver.RunElected(ctx, client, namespace, identity, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig to use outside a pod")
	cmd.Flags().StringVar(&namespace, "lease-namespace", "kube-system", "namespace of the leader election Lease "+approver.LeaseName)
	return cmd
}
