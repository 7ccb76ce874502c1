import { Spec, Validation } from '@cyclonedx/cyclonedx-library';

/**
 * Validates CycloneDX JSON against the spec 1.6 schema CycloneDX's library ships (ajv, strict, with
 * formats): null when valid, else the schema's complaints (paths and messages).
 */
export async function cycloneDxProblems(json: string): Promise<string[] | null> {
  const errors = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(json);
  if (errors === null) return null;
  const list = Array.isArray(errors) ? (errors as { instancePath?: string; message?: string }[]) : [errors as { instancePath?: string; message?: string }];
  return list.map((e) => `${e.instancePath || '(root)'}: ${e.message ?? JSON.stringify(e)}`);
}
