import type { Registry, Service } from '@archipelago/registry';
import { StartupError } from '@archipelago/platform/startup';
import type { DeadLetter } from '@archipelago/platform/events';
import { callService, InternalApiError } from '../internal-api.ts';

const consumersOf = (registry: Registry, keys: readonly string[]): Service[] =>
  (keys.length > 0 ? keys.map((key) => registry.service(key)) : registry.services).filter(
    // Only a group consumer dead-letters (a broadcast skips what keeps failing).
    (service) => service.subscriptions.some((subscription) => subscription.mode === 'group'),
  );

/** `archipelago dlq list|replay <id>|discard <id>`: the dead letters of every consuming service. */
export async function dlq(
  registry: Registry,
  action: 'list' | 'replay' | 'discard',
  id: string | undefined,
  options: { keys: readonly string[] },
  env: Readonly<Record<string, string | undefined>>,
  say: (line: string) => void,
): Promise<number> {
  const services = consumersOf(registry, options.keys);
  if (action === 'list') {
    let total = 0;
    let unreachable = 0;
    for (const service of services) {
      let deadLetters: DeadLetter[];
      try {
        ({ deadLetters } = (await callService<{ deadLetters: DeadLetter[] }>(service, env, { path: '/internal/v1/dead-letters?limit=1000' }))!);
      } catch (error) {
        if (error instanceof InternalApiError && error.status === 404) continue; // declared, but runs no consumer yet
        if (!(error instanceof StartupError)) throw error;
        say(error.message); // one service down does not hide the others' dead letters
        unreachable++;
        continue;
      }
      total += deadLetters.length;
      for (const letter of deadLetters) {
        say(`${letter.id}  ${service.key}/${letter.consumer}  ${letter.type}  ${letter.attempts} attempts  ${letter.failedAt}\n    ${letter.error}`);
      }
    }
    say(total === 0 ? 'No dead letters.' : `${total} dead letter(s). Replay one with \`dlq replay <id>\` once its cause is fixed, or \`dlq discard <id>\`.`);
    return unreachable > 0 ? 1 : 0;
  }
  if (!id) {
    say(`dlq ${action} needs the id of a dead letter (see \`dlq list\`).`);
    return 2;
  }
  const unreachable: string[] = [];
  for (const service of services) {
    try {
      await callService(service, env, action === 'replay'
        ? { method: 'POST', path: `/internal/v1/dead-letters/${encodeURIComponent(id)}/replay` }
        : { method: 'DELETE', path: `/internal/v1/dead-letters/${encodeURIComponent(id)}` });
      say(`${service.key}: dead letter ${id} ${action === 'replay' ? 'applied and removed' : 'discarded'}.`);
      return 0;
    } catch (error) {
      if (error instanceof InternalApiError && error.status === 404) continue;
      if (error instanceof StartupError) {
        unreachable.push(service.key);
        continue;
      }
      throw error;
    }
  }
  say(`No dead letter ${id}${unreachable.length > 0 ? ` in the services that answered (not answering: ${unreachable.join(', ')})` : ''}.`);
  return 1;
}
