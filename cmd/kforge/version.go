package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/config"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kforge's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "kforge %s (commit %s, %s, %s/%s)\ndefault Kubernetes version: %s\n",
				version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, config.DefaultKubernetesVersion)
			return nil
		},
	}
}
