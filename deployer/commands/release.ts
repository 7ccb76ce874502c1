import { command, PROBE_SCRIPT, sensitive, XamalError, type Command } from '../../core/index.ts';
import { checkVersion, releaseDir, type AppLayout } from './layout.ts';

export { checkVersion };

/**
 * Getting a release onto a host: the host's fingerprint (for the farm's resolver), the host pulling
 * its artifact itself from a short-lived link (the deployer is not in the data path), or unpacking a
 * file uploaded over SFTP (the fallback). The sha256 is checked on the host before anything is
 * unpacked, and a release directory appears whole or not at all.
 */

/** Runs the same probe as `xamal host probe` (one fixed script); parse with `parseProbeOutput`. */
export function probeCommand(): Command {
  return command(['sh', '-c', PROBE_SCRIPT], { label: 'fingerprint host', timeoutMs: 30_000 });
}

/** Exit codes of the pull script, turned into messages by `pullFailure`. */
export const PULL_EXIT = { download: 21, checksum: 22, unpack: 23 } as const;

// $1 release dir, $2 tmp dir, $3 expected sha256, $4 mode (url|file), $5 uploaded file (mode file).
// Mode url: curl reads its URL from stdin (`--config -`), never from argv, where `ps` shows it to
// every user. Unpacked files are the SSH user's (never the archive's owners), with no setuid/setgid
// bit and no group/other write, and readable by all (the app runs as its own user, not the owner;
// a file the archive has 0600 would stop it booting): the app reads its release, nobody changes it.
const PULL_SCRIPT = `set -u
umask 022
rel="$1"; tmp="$2"; sha="$3"
if [ -f "$rel/.xamal-complete" ]; then echo present; exit 0; fi
mkdir -p "$tmp" || exit ${PULL_EXIT.download}
if [ "$4" = url ]; then
  f="$tmp/$(basename "$rel").tar.gz"
  rm -f "$f"
  curl -fsS --retry 3 --retry-connrefused --connect-timeout 10 --max-time 900 -o "$f" --config - || { rm -f "$f"; exit ${PULL_EXIT.download}; }
else
  f="$5"
fi
got=$(sha256sum "$f" | cut -d' ' -f1)
if [ "$got" != "$sha" ]; then rm -f "$f"; echo "sha256 mismatch: expected $sha, got $got" >&2; exit ${PULL_EXIT.checksum}; fi
p="$rel.partial"
rm -rf "$p" && mkdir -p "$p" || exit ${PULL_EXIT.unpack}
tar --no-same-owner --no-same-permissions -xzf "$f" -C "$p" || { rm -rf "$p" "$f"; exit ${PULL_EXIT.unpack}; }
chmod -R u-s,g-s,go-w,a+rX -- "$p" || { rm -rf "$p" "$f"; exit ${PULL_EXIT.unpack}; }
touch "$p/.xamal-complete" && rm -rf "$rel" && mv "$p" "$rel" || { rm -rf "$p"; exit ${PULL_EXIT.unpack}; }
rm -f "$f"
echo pulled`;

/**
 * curl's config text naming `url` (a double-quoted value: backslash and quote escaped). A URL with a
 * line break or NUL is refused: it could smuggle a second option into the config.
 */
export function curlUrlConfig(url: string): string {
  if (/[\r\n\0]/.test(url)) throw new XamalError('validation', 'download URL: contains a line break or NUL');
  return `url = "${url.replace(/[\\"]/g, (c) => `\\${c}`)}"\n`;
}

export interface PullRequest {
  layout: AppLayout;
  version: string;
  sha256: string;
}

/** The host downloads the tarball from `url` (a secret: it reaches curl on stdin, never argv or env). */
export function pullReleaseCommand(req: PullRequest, url: string): Command {
  return command(['sh', '-c', PULL_SCRIPT, 'sh', releaseDir(req.layout, checkVersion(req.version)), req.layout.tmp, checkSha(req.sha256), 'url'], {
    stdin: sensitive(curlUrlConfig(url)),
    label: `pull release ${req.version}`,
    timeoutMs: 960_000,
  });
}

/** Where the SFTP fallback puts the tarball before `unpackUploadedCommand` checks and unpacks it. */
export function uploadPath(req: PullRequest): string {
  return `${req.layout.tmp}/${checkVersion(req.version)}.upload.tar.gz`;
}

export function unpackUploadedCommand(req: PullRequest): Command {
  return command(['sh', '-c', PULL_SCRIPT, 'sh', releaseDir(req.layout, checkVersion(req.version)), req.layout.tmp, checkSha(req.sha256), 'file', uploadPath(req)], {
    label: `unpack uploaded release ${req.version}`,
    timeoutMs: 300_000,
  });
}

/** Is the release already on the host (complete)? Exit 0 = yes. */
export function releasePresentCommand(layout: AppLayout, version: string): Command {
  return command(['test', '-f', `${releaseDir(layout, checkVersion(version))}/.xamal-complete`], { label: `is ${version} present` });
}

function checkSha(sha: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha)) throw new XamalError('validation', `sha256: expected 64 hex characters, got ${JSON.stringify(sha)}`);
  return sha;
}

/** Pure: a clear message for a failed pull, from its exit code and stderr. */
export function pullFailure(host: string, version: string, r: { code: number; stderr: string }): XamalError {
  const detail = r.stderr.trim().split('\n').slice(-3).join('; ');
  const what =
    r.code === PULL_EXIT.download
      ? `download failed (${detail || 'no output'})${/Failure writing|No space|write/i.test(detail) ? ' — is the disk full?' : ''}`
      : r.code === PULL_EXIT.checksum
        ? `refused to unpack: ${detail}`
        : r.code === PULL_EXIT.unpack
          ? `unpack failed (${detail || 'no output'})${/No space|write/i.test(detail) ? ' — is the disk full?' : ''}`
          : `exit ${r.code}: ${detail}`;
  return new XamalError('external', `${host}: release ${version}: ${what}; the previous release is untouched`);
}
