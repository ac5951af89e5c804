// Package artifacts serves a control plane's copy of kforge and of its
// bundle to the workers that join it, and fetches them on a worker. The
// operator's machine sends the bundle to the first control plane once; the
// workers then fetch from there, each only what it installs (a worker's
// binaries and images), instead of receiving kforge and the whole bundle
// from the operator over SSH.
//
// The transport is HTTPS with the API server's serving certificate, which
// workers check against the cluster CA they pinned at discovery, and every
// request carries the run's bootstrap token (Authorization: Bearer). What
// a worker installs is checked against the bundle's signed manifest: the
// manifest's SSH signature against the trusted keys, each binary's size and
// sha256 against the manifest, each image archive's config digest against
// the manifest's image ID (containerd checks the layers against the
// config's diff IDs as it unpacks them). kforge itself is checked against
// the operator's own binary's sha256.
package artifacts

import (
	"path"
	"strings"
)

// Port is the TCP port a control plane serves artifacts on while kforge
// joins workers to it. Workers must reach it; when they cannot, kforge
// falls back to sending the artifacts from the operator's machine.
const Port = 6445

// URL paths the server answers.
const (
	KforgePath    = "/v1/kforge"
	ManifestPath  = "/v1/manifest.json"
	SignaturePath = "/v1/manifest.json.sig"
	bundlePrefix  = "/v1/bundle/"
	imagesPrefix  = "/v1/images/"
)

// EntryPath is the URL path of a bundle entry (bin/kubelet, bin/cni/bridge).
func EntryPath(entry string) string { return bundlePrefix + path.Clean(entry) }

// ImagePath is the URL path of an image's archive, by its file name
// (images.FileName).
func ImagePath(file string) string { return imagesPrefix + path.Base(file) }

// IsImagePath tells whether p is an image archive's URL path.
func IsImagePath(p string) bool { return strings.HasPrefix(p, imagesPrefix) }
