export * from './plan.ts';
export { ensureHostRootfs, LAB_PACKAGES } from './rootfs.ts';
export { publicKeyFingerprint, reapStaleLabs, upLab, type Lab, type LabDeps, type LabHost, type LabOptions } from './lab.ts';
export { labDeps } from './config.ts';
export { caddyAdminGet, caddyRootCa } from './caddy-admin.ts';
export { buildFromSourceArtifacts, buildLabArtifacts, FROM_SOURCE, LAB_SUITES, labDeployYml, labFarmApi, labProject } from './project.ts';
