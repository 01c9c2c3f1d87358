import { generatedHeader } from './header.ts';

/** `infra/Dockerfile`: one image for every service; the compose file picks the entry point. */
export function dockerfile(workspaces: readonly string[]): string {
  return [
    generatedHeader('#', 'application image').trimEnd(),
    '# Node.js current LTS. TypeScript is compiled to dist/ by packages/cli/build.mjs, as by `npm start`.',
    'FROM node:24-bookworm-slim',
    'WORKDIR /app',
    'COPY package.json package-lock.json ./',
    ...workspaces.map((w) => `COPY ${w}/package.json ${w}/`),
    'RUN npm ci --omit=dev && npm cache clean --force',
    'COPY . .',
    'RUN node packages/cli/build.mjs',
    'ENV NODE_ENV=production',
    'USER node',
    'CMD ["node", "--enable-source-maps", "dist/packages/cli/src/main.mjs", "start"]',
    '',
  ].join('\n');
}

/** `.dockerignore`: keeps local data, secrets and host-built modules out of the image. */
export function dockerignore(): string {
  return [generatedHeader('#', 'Docker build context exclusions').trimEnd(), 'node_modules', '**/node_modules', '.data', '.env', 'dist', '.git', 'bench/results', ''].join('\n');
}
