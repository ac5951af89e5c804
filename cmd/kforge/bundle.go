package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"kforge.dev/kforge/bundle"
	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/config"
	"kforge.dev/kforge/images"
)

func init() { commands = append(commands, newBundle) }

func newBundle(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Make and check kforge bundles: binaries and images for hosts without network access",
	}
	cmd.AddCommand(newBundleCreate(g), newBundleInspect(), newBundleVerify(g), newBundleSign(g))
	return cmd
}

func newBundleCreate(g *globalOptions) *cobra.Command {
	o := bundle.CreateOptions{}
	d := bundle.DownloadOptions{}
	var download bool
	var key signingKey
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Pack binaries and images into one bundle file",
		Long: "Pack the kubelet, kubectl, kubeadm, the CNI plugins, optionally containerd and runc, and every image of the cluster into one file.\n\n" +
			"By default they come from local builds (`make artifacts` fills " + images.DefaultCache().Dir + ", or $KFORGE_CACHE), and the bundle is written there, named by its content, unless -o says otherwise.\n" +
			"With --download, official release binaries are downloaded (each checked against its published sha256) and the images pulled from their registries.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if download {
				if o.FromCache != "" {
					return fmt.Errorf("--from-cache and --download exclude each other")
				}
				o.Download = &d
			} else if o.FromCache == "" {
				o.FromCache = images.DefaultCache().Dir
			}
			r := g.reporter(cmd)
			o.Step = r.Step
			o.Log = r.Log()
			o.Progress = progress(g, cmd)
			var signer ssh.Signer
			if key.path != "" {
				// Before the build: a key that cannot sign fails fast.
				s, err := key.load()
				if err != nil {
					return err
				}
				signer = s
			}
			path, err := bundle.Create(cmd.Context(), o)
			if err != nil {
				return err
			}
			if signer != nil {
				if err := bundle.Sign(path, signer); err != nil {
					return err
				}
				r.Infof("signed by %s: %s", ssh.FingerprintSHA256(signer.PublicKey()), bundle.SignaturePath(path))
			}
			r.Infof("%s", path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.KubernetesVersion, "kubernetes-version", images.Default(), "Kubernetes version")
	f.StringVarP(&o.Output, "output", "o", "", "bundle file (default: named by content in the cache with --from-cache, ./kforge-bundle-VERSION.tar with --download)")
	f.StringVar(&o.FromCache, "from-cache", "", "directory of local builds (default $KFORGE_CACHE or ~/.cache/kforge)")
	f.BoolVar(&download, "download", false, "download official release binaries and pull images instead of using local builds")
	f.StringVar(&d.BaseURL, "base-url", "", "with --download: where Kubernetes release binaries are (default https://dl.k8s.io/release)")
	f.StringVar(&d.CNIBaseURL, "cni-base-url", "", "with --download: where CNI plugin releases are (default GitHub's containernetworking/plugins releases)")
	f.StringVar(&d.Registry, "registry", "", "with --download: pull every image from this registry (same repository paths) instead of its own")
	f.StringVar(&o.Containerd, "containerd", "", "containerd 2.x binary (its directory must also hold containerd-shim-runc-v2 and ctr) or a directory holding them")
	f.StringVar(&o.Runc, "runc", "", "runc binary")
	f.BoolVar(&o.WithoutKubeadm, "without-kubeadm", false, "leave kubeadm out")
	f.StringVar(&key.path, "sign-key", "", "sign the bundle with this SSH private key (writes BUNDLE.sig; see kforge bundle sign)")
	f.StringVar(&key.passphraseFrom, "sign-key-passphrase-from", "", "env:NAME or file:PATH holding the signing key's passphrase")
	return cmd
}

// signingKey is an SSH private key file and where its passphrase is.
type signingKey struct{ path, passphraseFrom string }

func (k signingKey) load() (ssh.Signer, error) {
	data, err := os.ReadFile(config.ExpandHome(k.path))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	if k.passphraseFrom != "" {
		pass, err := config.Secret(k.passphraseFrom)
		if err != nil {
			return nil, fmt.Errorf("signing key %s passphrase: %w", k.path, err)
		}
		s, err := ssh.ParsePrivateKeyWithPassphrase(data, []byte(pass))
		if err != nil {
			return nil, fmt.Errorf("signing key %s: %w", k.path, err)
		}
		return s, nil
	}
	s, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("signing key %s is encrypted: give its passphrase with --sign-key-passphrase-from env:NAME or file:PATH", k.path)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", k.path, err)
	}
	return s, nil
}

func newBundleSign(g *globalOptions) *cobra.Command {
	var key signingKey
	cmd := &cobra.Command{
		Use:   "sign FILE --key KEY",
		Short: "Sign a bundle's manifest with an SSH key (writes FILE.sig)",
		Long: "Sign a bundle with an SSH private key: an SSH signature (ssh-keygen -Y sign's format, namespace " + bundle.SignatureNamespace + ")\n" +
			"over its manifest, which holds the sha256 of every other entry, written to FILE.sig beside it. init, up, join and bundle verify\n" +
			"install a bundle only when a key from --trusted-key or the cluster file's artifacts.trustedKeys made its signature.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key.path == "" {
				return fmt.Errorf("--key is required: the SSH private key to sign with, e.g. ~/.ssh/id_ed25519")
			}
			s, err := key.load()
			if err != nil {
				return err
			}
			if err := bundle.Sign(args[0], s); err != nil {
				return err
			}
			g.reporter(cmd).Infof("signed by %s: %s", ssh.FingerprintSHA256(s.PublicKey()), bundle.SignaturePath(args[0]))
			return nil
		},
	}
	cmd.Flags().StringVar(&key.path, "key", "", "SSH private key to sign with")
	cmd.Flags().StringVar(&key.passphraseFrom, "key-passphrase-from", "", "env:NAME or file:PATH holding the key's passphrase")
	return cmd
}

func newBundleInspect() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "List a bundle's versions, binaries and images (from its manifest; verify checks the content)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := bundle.Inspect(args[0])
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(m)
			}
			printManifest(cmd.OutOrStdout(), m)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest as JSON")
	return cmd
}

func printManifest(out io.Writer, m bundle.Manifest) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	v := m.Versions
	fmt.Fprintf(w, "Kubernetes\t%s\narchitecture\tlinux/%s\n", m.KubernetesVersion, m.Arch)
	fmt.Fprintf(w, "etcd\t%s\nCoreDNS\t%s\npause\t%s\nkube-router\t%s\nCNI plugins\t%s\n", v.Etcd, v.CoreDNS, v.Pause, v.KubeRouter, v.CNIPlugins)
	if v.Containerd != "" {
		fmt.Fprintf(w, "containerd\t%s\nrunc\t%s\n", v.Containerd, v.Runc)
	}
	if v.Crictl != "" {
		fmt.Fprintf(w, "crictl\t%s\n", v.Crictl)
	}
	fmt.Fprintf(w, "source\t%s\n\nBINARIES\tSIZE\tNODES\tSHA256\n", m.Source)
	for _, e := range m.Binaries(true) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", e.Path, size(e.Size), nodes(e.ControlPlaneOnly), e.SHA256)
	}
	if e, ok := m.Entry(bundle.ImagesName); ok {
		fmt.Fprintf(w, "\nIMAGES (%s, %s)\tNODES\tID\n", e.Path, size(e.Size))
	}
	for _, img := range m.Images {
		fmt.Fprintf(w, "%s\t%s\t%s\n", img.Name, nodes(img.ControlPlaneOnly), img.ID)
	}
	w.Flush()
}

// nodes says which nodes install a bundle entry.
func nodes(controlPlaneOnly bool) string {
	if controlPlaneOnly {
		return "control planes"
	}
	return "all"
}

func size(n int64) string {
	const mib = 1 << 20
	if n >= mib {
		return fmt.Sprintf("%.1f MiB", float64(n)/mib)
	}
	return fmt.Sprintf("%d B", n)
}

func newBundleVerify(g *globalOptions) *cobra.Command {
	var t cluster.Trust
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a bundle's signature against the trusted keys, then every entry against the sha256 in its manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r := g.reporter(cmd)
			c := config.Default()
			if err := t.Apply(c); err != nil {
				return err
			}
			keys, err := bundle.ParseTrustedKeys(c.Artifacts.TrustedKeys)
			if err != nil {
				return err
			}
			signer, err := bundle.VerifySignature(args[0], keys)
			switch {
			case err == nil:
				r.Infof("signed by %s", signer)
			case t.AllowUnsigned:
				r.Infof("  ! --unsafe-allow-unsigned-bundle: %v", err)
			default:
				return err
			}
			done := r.Step("verify " + args[0])
			m, err := bundle.Walk(cmd.Context(), args[0], nil)
			done(err)
			if err != nil {
				return err
			}
			r.Infof("%d entries match the manifest of Kubernetes %s", len(m.Entries), m.KubernetesVersion)
			return nil
		},
	}
	addTrustFlags(cmd.Flags(), &t)
	return cmd
}

// progress draws transfer bars on stderr when it is a terminal and output
// is not plain.
func progress(g *globalOptions, cmd *cobra.Command) func(string, int64) io.WriteCloser {
	f, ok := cmd.ErrOrStderr().(*os.File)
	if !ok || g.plain || os.Getenv("CI") != "" || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(title string, total int64) io.WriteCloser {
		return progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription(title),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
	}
}

// addTrustFlags registers which bundles a command installs.
func addTrustFlags(f *pflag.FlagSet, t *cluster.Trust) {
	f.StringArrayVar(&t.TrustedKeys, "trusted-key", nil, "public key (ssh-ed25519 AAAA...) or file of them whose signature the bundle must carry; repeatable; adds to the cluster file's artifacts.trustedKeys and $"+cluster.TrustedKeysEnv)
	f.BoolVar(&t.AllowUnsigned, "unsafe-allow-unsigned-bundle", false, "install a bundle without a trusted signature (UNSAFE: anyone who could change the file chooses what runs as root)")
}
