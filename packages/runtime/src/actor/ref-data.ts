/** How a message travels: `fast` is core NATS request/reply, `durable` goes through the actor's stream. */
export type DeliveryMode = 'fast' | 'durable';

/** The plain data of a ref: what crosses the wire when a ref is put in a message. */
export interface ActorRefData {
  type: string;
  id: string;
}
