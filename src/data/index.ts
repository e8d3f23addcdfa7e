/**
 * Data: the nerfad clip format (writer and validating loader), WAV decoding/encoding and resampling, and the
 * log-mel audio features AudioNet reads. See docs/dataset-format.md.
 */
export * from './format.ts';
export * from './wav.ts';
export * from './audio-features.ts';
export { importAdnerf, ImportError, type ImportOptions, type ImportReport } from './import-adnerf.ts';
