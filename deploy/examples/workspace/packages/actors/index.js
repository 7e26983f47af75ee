// The actor types the services share: the worker hosts them, the API only sends them messages. One
// definition, imported by both, keeps message shapes in one place.
import { defineActor } from '@stitch/runtime';

const PRICES = { apple: 30, pear: 45, plum: 20 };

/** A customer's cart: one virtual actor per customer id, activated on a worker by its first message. */
export const Cart = defineActor({
  type: 'orders-cart',
  init: () => ({ quotes: 0 }),
  handlers: {
    /** Prices `items` ({ sku: count }); says which node did it. */
    quote: (state, msg, ctx) => {
      let cents = 0;
      for (const [sku, count] of Object.entries(msg.items)) {
        const price = PRICES[sku];
        if (price === undefined) throw new Error(`unknown sku ${sku}`);
        cents += price * count;
      }
      state.quotes += 1;
      return { cents, quotes: state.quotes, pricedBy: ctx.nodeId };
    },
  },
});
