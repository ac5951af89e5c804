// Package ssh is the Host for a machine kforge reaches over SSH.
//
// A Host holds one SSH client connection and, opened on first use, one SFTP
// client on top of it; both are reused for every operation until Close.
// Dial connects; a Pool hands out one shared Host per user@address:port (and
// jump host), so phases running on many hosts in parallel never open a second
// connection to the same machine.
//
// # Commands
//
// Run never sends a raw shell string. Every argv word is quoted with
// host.ShellQuote and the line is run as
//
//	exec /bin/sh -c 'echo $$; exec [sudo ...] [env K=V ...] ARGV'
//
// sshd starts each session's command as a session and process-group leader,
// so the PID echoed first (and stripped from the output) is the process group
// of the command and everything it starts. When ctx is cancelled kforge opens
// a second session on the same connection and runs `kill -KILL -- -PGID`
// (through sudo when the command ran through sudo), because OpenSSH delivers
// a session signal only to the session's direct child and never to what it
// started, and a closed channel without a terminal does not end the command.
//
// # Users and sudo
//
// When the user is root, nothing is wrapped. For any other user, Cmd.Sudo
// wraps the command: `sudo -n --` when the user may sudo without a password,
// or `sudo -k -S -p PROMPT --` with an empty prompt and Config.SudoPassword
// written as the first line of standard input, before Cmd.Stdin. Which of the
// two applies is probed once per Host (`sudo -k -n true`, then the
// password), so a password given for a NOPASSWD user is never fed into a
// command's standard input.
//
// File operations always act as root: kforge writes /etc/kubernetes and
// friends. As root they need no wrapping; for other users they go through the
// same sudo wrapping:
//
//   - ReadFile runs cat, Stat runs stat -L, Remove runs rm -rf.
//   - WriteFile streams the data into a shell snippet that creates the parent
//     directories, writes a mktemp file next to the target, chmods it and
//     renames it over the target, so readers see the old or the new file,
//     never a partial one.
//   - Upload first asks the host for the target's sha256sum and mode and
//     skips the transfer when the checksum matches (fixing only the mode if
//     that differs). Otherwise, as root, it writes over SFTP to a temporary
//     name in the target's directory and renames it into place; as another
//     user it writes over SFTP to a private file in /tmp owned by that user,
//     then, through sudo, copies it to a temporary name next to the target,
//     sets the mode and renames it into place, and removes the /tmp file.
//     Files over 1 MiB show a progress bar on Config.Progress.
//   - A directory where WriteFile or Upload is to put a file is an error;
//     nothing is moved into it.
//
// # Host keys
//
// Host keys are checked against Config.KnownHostsPath (~/.ssh/known_hosts by
// default). An unknown host is refused with an *UnknownHostKeyError naming
// the key type and SHA256 fingerprint; with AcceptNewHostKeys
// (--accept-new-host-keys) the key is appended to known_hosts instead, which
// is created 0600 if needed. A key that differs from the recorded one is a
// *HostKeyChangedError naming the file and line; it is never accepted, and
// nothing in this package retries a dial.
package ssh
