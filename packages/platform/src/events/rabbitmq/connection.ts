import amqplib, { type RecoveringChannelModel } from 'amqplib';

/**
 * One AMQP connection shared by its users (a transport has one for its relay, one for its
 * subscriptions), opened on first use and closed when the last user lets go. amqplib's recovery
 * reconnects with backoff (jittered, up to 5 s, forever); users re-open their channels and
 * re-declare what they need after a loss. `name` shows in the broker's connection list.
 */
export interface SharedConnection {
  acquire(): Promise<RecoveringChannelModel>;
  release(): Promise<void>;
}

export function sharedConnection(url: string, onError: (error: unknown) => void = () => undefined, name?: string): SharedConnection {
  let model: Promise<RecoveringChannelModel> | undefined;
  let users = 0;
  return {
    acquire() {
      users++;
      // No Nagle: a publish or an ack is a small write that would otherwise wait for the
      // broker's delayed TCP acknowledgement (up to 40 ms on Linux) behind the one before it.
      const options = { noDelay: true, clientProperties: name ? { connection_name: name } : {}, recovery: { initialDelay: 100, maxDelay: 5_000, waitForConnect: false } };
      model ??= amqplib.connect(url, options).then((connection) => {
        connection.on('error', onError);
        connection.on('connect-failed', onError);
        return connection;
      });
      return model;
    },
    async release() {
      if (--users > 0 || !model) return;
      const closing = model;
      model = undefined;
      await (await closing).close().catch(() => undefined);
    },
  };
}
