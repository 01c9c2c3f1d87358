import amqplib, { type RecoveringChannelModel } from 'amqplib';

/**
 * One AMQP connection shared by a transport's relay and subscriptions, opened on first use and
 * closed when the last user lets go. amqplib's recovery reconnects with backoff (jittered, up to
 * 5 s, forever); users re-open their channels and re-declare what they need after a loss.
 */
export interface SharedConnection {
  acquire(): Promise<RecoveringChannelModel>;
  release(): Promise<void>;
}

export function sharedConnection(url: string, onError: (error: unknown) => void = () => undefined): SharedConnection {
  let model: Promise<RecoveringChannelModel> | undefined;
  let users = 0;
  return {
    acquire() {
      users++;
      model ??= amqplib.connect(url, { recovery: { initialDelay: 100, maxDelay: 5_000, waitForConnect: false } }).then((connection) => {
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
