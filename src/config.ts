// The config's public entry point. The file's sections live in src/config/, one module each
// (schema with defaults and descriptions, and its normaliser); load.ts puts them together.
export { ConfigSchema, loadConfig, parseConfig, type Config } from './config/load.ts';
export { ConfigError, checkSchema, type Src } from './config/source.ts';
export { type NamedTarget, type PgBouncerTargetConfig, type RedisTargetConfig } from './config/targets.ts';
export { type FaissIndexConfig } from './config/faiss.ts';
export { BACKUP_KINDS, type BackupKindName, type BackupsConfig } from './config/backups.ts';
export { type ElasticsearchConfig } from './config/elasticsearch.ts';
export { type CertificateConfig } from './config/certificates.ts';
export { type ArchiveConfig, type CleanupConfig, type ExecProgramConfig, type WarmQueryConfig } from './config/actions.ts';
