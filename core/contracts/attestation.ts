import { z } from 'zod';

/**
 * What the farm signs and what a deployer verifies (issue 23). Three files sit next to each
 * artifact's manifest.json (keys in core/store-keys.ts):
 *
 *   manifest.dsse.json    DSSE envelope, payloadType MANIFEST_PAYLOAD_TYPE, payload = the exact bytes of
 *                         manifest.json; the manifest holds the tarball's sha256 and the sha256 of the
 *                         provenance envelope and the SBOM (`attestations`), so one signature covers all.
 *   provenance.dsse.json  DSSE envelope, payloadType IN_TOTO_PAYLOAD_TYPE, payload = an in-toto Statement
 *                         v1 whose subject is the tarball (name + sha256) with an SLSA v1 provenance predicate.
 *   sbom.cdx.json         CycloneDX JSON (spec 1.6) of the release: mix.lock's packages, the release's
 *                         applications, ERTS and the OTP applications included.
 *
 * DSSE: https://github.com/secure-systems-lab/dsse (envelope.md, protocol.md); signatures are ed25519
 * over PAE(payloadType, payload) (core/signing.ts).
 */

/** DSSE's payload type for an xamal manifest (the bytes of manifest.json). */
export const MANIFEST_PAYLOAD_TYPE = 'application/vnd.xamal.manifest+json';
/** DSSE's payload type for an in-toto statement. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const IN_TOTO_STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_TYPE = 'https://slsa.dev/provenance/v1';
/** The SLSA buildType naming how xamal builds (what externalParameters/internalParameters mean). */
export const XAMAL_BUILD_TYPE = 'https://xamal.dev/build/mix-release/v1';

const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected standard base64');
/** A signing key's id: the first 16 hex digits of the sha256 of its raw 32-byte ed25519 public key. */
export const KeyIdSchema = z.string().regex(/^[0-9a-f]{16}$/, 'expected a key id (16 hex digits)');
const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 hex digits');

export const DsseSignatureSchema = z.object({ keyid: KeyIdSchema, sig: Base64 }).strict();

/** A DSSE envelope (JSON serialization). */
export const DsseEnvelopeSchema = z
  .object({
    payloadType: z.string().min(1).max(128),
    payload: Base64,
    signatures: z.array(DsseSignatureSchema).min(1).max(8),
  })
  .strict();
export type DsseEnvelope = z.output<typeof DsseEnvelopeSchema>;

/**
 * A public key as users write it (deploy.yml `farm.public_key`, `xamal farm keys new`'s output):
 * `ed25519:<base64 of the raw 32-byte key>`.
 */
export const PublicKeyTextSchema = z
  .string()
  .regex(/^ed25519:[A-Za-z0-9+/]{43}=$/, 'expected an ed25519 public key like ed25519:<44 base64 characters> (from `xamal farm keys new`)');

/** One key the farm publishes (`GET /v1/keys`). */
export const FarmPublicKeySchema = z
  .object({
    keyid: KeyIdSchema,
    publicKey: PublicKeyTextSchema,
    /** The key new artifacts are signed with; the others are rotated out (still listed so old artifacts can be checked). */
    current: z.boolean(),
  })
  .strict();
export const FarmPublicKeysSchema = z.object({ keys: z.array(FarmPublicKeySchema) }).strict();
export type FarmPublicKey = z.output<typeof FarmPublicKeySchema>;
export type FarmPublicKeys = z.output<typeof FarmPublicKeysSchema>;

/** A file next to the manifest, named by its store key and pinned by its sha256 (covered by the manifest's signature). */
export const AttachedFileSchema = z.object({ key: z.string().max(1024), sha256: Sha256Hex }).strict();

/** The manifest's `attestations` field (optional: artifacts built before issue 23 have none). */
export const ManifestAttestationsSchema = z
  .object({
    provenance: AttachedFileSchema.optional(),
    sbom: AttachedFileSchema.optional(),
  })
  .strict();

const DigestSet = z.record(z.string().min(1), z.string().min(1));
const ResourceDescriptor = z
  .object({
    uri: z.string().optional(),
    digest: DigestSet.optional(),
    name: z.string().optional(),
    annotations: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .refine((r) => r.uri !== undefined || r.digest !== undefined || r.name !== undefined, 'a resource descriptor needs uri, digest or name');

/** SLSA v1 provenance predicate (https://slsa.dev/spec/v1.0/provenance), the fields xamal fills. */
export const SlsaProvenanceSchema = z
  .object({
    buildDefinition: z
      .object({
        buildType: z.string().url(),
        externalParameters: z.record(z.string(), z.unknown()),
        internalParameters: z.record(z.string(), z.unknown()).optional(),
        resolvedDependencies: z.array(ResourceDescriptor).optional(),
      })
      .strict(),
    runDetails: z
      .object({
        builder: z.object({ id: z.string().url(), version: z.record(z.string(), z.string()).optional(), builderDependencies: z.array(ResourceDescriptor).optional() }).strict(),
        metadata: z
          .object({ invocationId: z.string().optional(), startedOn: z.string().datetime().optional(), finishedOn: z.string().datetime().optional() })
          .strict()
          .optional(),
        byproducts: z.array(ResourceDescriptor).optional(),
      })
      .strict(),
  })
  .strict();

/** An in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md) carrying SLSA provenance. */
export const ProvenanceStatementSchema = z
  .object({
    _type: z.literal(IN_TOTO_STATEMENT_TYPE),
    subject: z.array(z.object({ name: z.string().min(1), digest: z.object({ sha256: Sha256Hex }).catchall(z.string()) }).strict()).min(1),
    predicateType: z.literal(SLSA_PROVENANCE_TYPE),
    predicate: SlsaProvenanceSchema,
  })
  .strict();
export type ProvenanceStatement = z.output<typeof ProvenanceStatementSchema>;
