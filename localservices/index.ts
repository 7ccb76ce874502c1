export { PROJECT_ROOT, servicesConfig, type ServicesConfig } from './config.ts';
export { serviceEndpoints, type ServiceEndpoints } from './endpoints.ts';
export { SERVICE_NAMES, serviceSpec, type ServiceName, type ServiceSpec } from './catalog.ts';
export { servicesUp, servicesDown, servicesStatus, resolveNames, type UpResult, type ServiceStatus } from './manager.ts';
export { ensurePackages, missingPackages } from './packages.ts';
