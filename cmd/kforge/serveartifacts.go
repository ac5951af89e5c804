package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/artifacts"
	"kforge.dev/kforge/cluster"
)

func init() { commands = append(commands, newServeArtifacts) }

// serveArtifactsLifetime bounds a server whose standard input never closes.
const serveArtifactsLifetime = 2 * time.Hour

// newServeArtifacts is the hidden command that init -f and join --ssh run
// on the control plane while they join workers: it serves the control
// plane's kforge and bundle (package artifacts) to clients that present
// the token read from the first line of standard input, and stops when
// standard input closes.
func newServeArtifacts(*globalOptions) *cobra.Command {
	listen := ":" + strconv.Itoa(artifacts.Port)
	cmd := &cobra.Command{
		Use:    "serve-artifacts",
		Short:  "Serve this control plane's kforge and bundle to the workers that join it, until standard input closes",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := bufio.NewReader(cmd.InOrStdin())
			token, err := readTokenLine(in)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx = cancelOnEOF(ctx, in)
			ctx, cancel := context.WithTimeout(ctx, serveArtifactsLifetime)
			defer cancel()
			return cluster.ServeArtifacts(ctx, listen, token, cmd.ErrOrStderr(), func(addr string) {
				fmt.Fprintln(cmd.OutOrStdout(), cluster.ServeArtifactsReady+addr)
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", listen, "address to listen on")
	return cmd
}
