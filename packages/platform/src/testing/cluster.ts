/** What the global setup hands to every test worker. */
export interface TestCluster {
  /** The vitest project whose files share this cluster. */
  readonly project: string;
  readonly dataDir: string;
  readonly port: number;
  readonly superuserPassword: string;
  /** Template databases per service (already migrated), with their role URLs. */
  readonly databases: Readonly<Record<string, { appUrl: string; ownerUrl: string }>>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    archipelagoCluster: TestCluster;
  }
}
