/**
 * A mix.lock as Mix writes it (Mix.Dep.Lock: sorted keys, `inspect`ed entries, a trailing comma),
 * with the shapes real projects have: Hex packages with and without dependencies, built by mix,
 * rebar3 and make, an optional dependency, one from a Hex organization, one from a lock written
 * before Hex's outer checksum, one whose app name differs from its package, and git dependencies from
 * GitHub (scp-like and https, with credentials in the URL) and from elsewhere. Plus the release
 * layout a build of it packs.
 */
export const FIXTURE_LOCK = `%{
  "acme_billing": {:hex, :acme_billing, "2.1.0", "1111111111111111111111111111111111111111111111111111111111111111", [:mix], [], "hexpm:acme", "2222222222222222222222222222222222222222222222222222222222222222"},
  "cowlib": {:hex, :cowlib, "2.13.0", "db8f7505d8332d98ef50a3ef34b34c1afddec7506e4ee4dd4a3a266285d282ca", [:make, :rebar3], [], "hexpm", "e1e1284dc3fc030a64b1ad0d8382ae7e99da46c3246b815318a4b33acfcff630"},
  "decimal": {:hex, :decimal, "2.1.1", "5611dca5d4b2c3dd497dec8f68751f1f1a54755e8ed2a966c2633cf885973ad6", [:mix], [], "hexpm", "53cfe5f497ed0e7771ae1a475575603d77425099ba5faef9394932b35020ffcc"},
  "jason": {:hex, :jason, "1.4.4", "b9226785a9aa77b6857ca22832cffa5d5011a667207eb2a0ad56adb5db443b8a", [:mix], [{:decimal, "~> 1.0 or ~> 2.0", [hex: :decimal, repo: "hexpm", optional: true]}], "hexpm", "c5eb0cab91f094599f94d55bc63409236a8ec69a21a67814529e8d5f6cc90b3b"},
  "legacy": {:hex, :legacy, "0.9.0", "3333333333333333333333333333333333333333333333333333333333333333", [:mix], []},
  "my_plug": {:hex, :plug, "1.16.1", "40c74619c12f82736d2214557dedec2e9762029b2438d6d175c5074c933edc9d", [:mix], [{:mime, "~> 1.0 or ~> 2.0", [hex: :mime, repo: "hexpm", optional: false]}, {:plug_crypto, "~> 1.1.1 or ~> 1.2 or ~> 2.0", [hex: :plug_crypto, repo: "hexpm", optional: false]}, {:telemetry, "~> 0.4.3 or ~> 1.0", [hex: :telemetry, repo: "hexpm", optional: false]}], "hexpm", "a13ff6b9006b03d7e33874945b2755253841b238c34071ed85b0e86057f8cddc"},
  "phoenix_html": {:git, "git@github.com:Phoenix-Framework/phoenix_html.git", "0123456789abcdef0123456789abcdef01234567", [branch: "main"]},
  "shop_hash": {:git, "https://user:s3cret@git.example.org/tools/shop_hash.git", "89abcdef0123456789abcdef0123456789abcdef", [ref: "89abcdef0123456789abcdef0123456789abcdef", sparse: "c_src"]},
  "telemetry": {:hex, :telemetry, "1.3.0", "fedebbae410d715cf8e7062c96a1ef32ec22e764197f70cda73d82778d61e7a2", [:rebar3], [], "hexpm", "7015fc8919dbe63764f4b4b87a95b7c0996bd539e0d499be6ec9d7f3875b79e6"},
}
`;

/** Paths of the tarball of a release of `shop` 1.0.0 built with that lock (what the scan sees). */
export const FIXTURE_RELEASE_PATHS = [
  'bin/shop',
  'erts-13.1.5/bin/beam.smp',
  'lib/kernel-8.5.3/ebin/kernel.app',
  'lib/stdlib-4.2/ebin/stdlib.app',
  'lib/crypto-5.1.4/priv/lib/crypto.so',
  'lib/compiler-8.2.3/ebin/compiler.app',
  'lib/elixir-1.14.0/ebin/elixir.app',
  'lib/logger-1.14.0/ebin/logger.app',
  'lib/eex-1.14.0/ebin/eex.app',
  'lib/shop-1.0.0/ebin/shop.app',
  'lib/shop_web-1.0.0/ebin/shop_web.app',
  'lib/jason-1.4.4/ebin/jason.app',
  'lib/my_plug-1.16.1/ebin/my_plug.app',
  'lib/telemetry-1.3.0/ebin/telemetry.app',
  'lib/cowlib-2.13.0/ebin/cowlib.app',
  'lib/acme_billing-2.1.0/ebin/acme_billing.app',
  'lib/legacy-0.9.0/ebin/legacy.app',
  'lib/phoenix_html-4.1.0/ebin/phoenix_html.app',
  'lib/shop_hash-0.2.0/priv/shop_hash.so',
  'releases/1.0.0/shop.rel',
  'releases/start_erl.data',
];

/** A lock of one Hex package, as the fake builds' deps step would leave it (testkit/builder/fake-docker.ts fetches jason). */
export const ONE_PACKAGE_LOCK = `%{
  "jason": {:hex, :jason, "1.4.4", "b9226785a9aa77b6857ca22832cffa5d5011a667207eb2a0ad56adb5db443b8a", [:mix], [], "hexpm", "c5eb0cab91f094599f94d55bc63409236a8ec69a21a67814529e8d5f6cc90b3b"},
}
`;
