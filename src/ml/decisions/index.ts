export * from './calibration';
export * from './conformal';
export * from './domain';
export * from './out-of-fold';
export * from './recipe';
export * from './rule';
