// Shopping cart arithmetic for a storefront: prices in cents, discounts, tax and shipping rules.

export type Cents = number;

export interface Product {
  sku: string;
  title: string;
  price: Cents;
  weightGrams: number;
  taxable: boolean;
}

export interface Line {
  product: Product;
  quantity: number;
}

export type Discount =
  | { kind: "percent"; percent: number; minimum?: Cents }
  | { kind: "fixed"; amount: Cents; minimum?: Cents }
  | { kind: "freeShipping" };

export interface Totals {
  subtotal: Cents;
  discount: Cents;
  tax: Cents;
  shipping: Cents;
  total: Cents;
}

const TAX_RATE = 0.2;
const FREE_SHIPPING_FROM: Cents = 5000;

export class Cart {
  private lines = new Map<string, Line>();
  private discounts: Discount[] = [];

  add(product: Product, quantity = 1): void {
    if (quantity <= 0 || !Number.isInteger(quantity)) {
      throw new RangeError(`quantity must be a positive whole number, not ${quantity}`);
    }
    const existing = this.lines.get(product.sku);
    if (existing) {
      existing.quantity += quantity;
    } else {
      this.lines.set(product.sku, { product, quantity });
    }
  }

  remove(sku: string, quantity?: number): void {
    const line = this.lines.get(sku);
    if (!line) {
      return;
    }
    if (quantity === undefined || quantity >= line.quantity) {
      this.lines.delete(sku);
    } else {
      line.quantity -= quantity;
    }
  }

  applyDiscount(discount: Discount): void {
    this.discounts.push(discount);
  }

  get itemCount(): number {
    let count = 0;
    for (const line of this.lines.values()) {
      count += line.quantity;
    }
    return count;
  }

  subtotal(): Cents {
    let sum = 0;
    for (const { product, quantity } of this.lines.values()) {
      sum += product.price * quantity;
    }
    return sum;
  }

  weight(): number {
    return [...this.lines.values()].reduce((grams, line) => grams + line.product.weightGrams * line.quantity, 0);
  }

  private discountOn(subtotal: Cents): Cents {
    let best = 0;
    for (const discount of this.discounts) {
      if (discount.kind === "freeShipping" || subtotal < (discount.minimum ?? 0)) {
        continue;
      }
      const value = discount.kind === "percent" ? Math.round((subtotal * discount.percent) / 100) : discount.amount;
      best = Math.max(best, Math.min(value, subtotal));
    }
    return best;
  }

  private shippingFor(subtotal: Cents): Cents {
    if (this.lines.size === 0 || subtotal >= FREE_SHIPPING_FROM) {
      return 0;
    }
    if (this.discounts.some((d) => d.kind === "freeShipping")) {
      return 0;
    }
    const kilos = Math.ceil(this.weight() / 1000);
    return 490 + Math.max(0, kilos - 1) * 150;
  }

  totals(): Totals {
    const subtotal = this.subtotal();
    const discount = this.discountOn(subtotal);
    const share = subtotal === 0 ? 0 : (subtotal - discount) / subtotal;
    let taxable = 0;
    for (const { product, quantity } of this.lines.values()) {
      if (product.taxable) {
        taxable += product.price * quantity * share;
      }
    }
    const tax = Math.round(taxable * TAX_RATE);
    const shipping = this.shippingFor(subtotal);
    return { subtotal, discount, tax, shipping, total: subtotal - discount + tax + shipping };
  }
}

export function formatCents(amount: Cents, currency = "EUR"): string {
  const sign = amount < 0 ? "-" : "";
  const whole = Math.floor(Math.abs(amount) / 100);
  const rest = String(Math.abs(amount) % 100).padStart(2, "0");
  return `${sign}${whole}.${rest} ${currency}`;
}
