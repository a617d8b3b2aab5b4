// Cardwise: spending by category from transaction descriptions, and the card whose
// reward rate earns the most on that mix.
"use strict";
const $ = (id) => document.getElementById(id);
const money = (value) => "£" + value.toLocaleString("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const day = (date) => date.toISOString().slice(0, 10);

const CATEGORIES = [
  ["Groceries", /tesco|sainsbury|asda|aldi|lidl|waitrose/i],
  ["Travel", /transport for london|tfl|rail|airways|uber/i],
  ["Fuel", /shell|bp |esso|petrol/i],
  ["Eating out", /pret|restaurant|cafe|coffee/i],
  ["Online shopping", /amazon|ebay|etsy/i],
  ["Bills", /energy|water|spotify|netflix|mobile/i],
];
const CARDS = [
  { name: "GrocerPlus Cashback", rates: { Groceries: 0.03 }, base: 0.005 },
  { name: "Commuter Miles", rates: { Travel: 0.04, Fuel: 0.02 }, base: 0.004 },
  { name: "Everyday 1%", rates: {}, base: 0.01 },
  { name: "Shopper Rewards", rates: { "Online shopping": 0.025, "Eating out": 0.02 }, base: 0.005 },
];

async function spending() {
  const to = new Date();
  const from = new Date(to.getTime() - 90 * 86400000);
  const sums = new Map(CATEGORIES.map(([name]) => [name, 0]).concat([["Other", 0]]));
  for (const account of (await consentnet.accounts()).Data.Account) {
    const page = await consentnet.transactions(account.AccountId, day(from), day(to));
    for (const entry of page.Data.Transaction || []) {
      if (entry.CreditDebitIndicator !== "Debit") continue;
      const text = entry.TransactionInformation || "";
      const found = CATEGORIES.find(([, pattern]) => pattern.test(text));
      const category = found ? found[0] : "Other";
      sums.set(category, sums.get(category) + Number(entry.Amount.Amount));
    }
  }
  return sums;
}

function best(sums) {
  const yearly = (card) =>
    [...sums].reduce((total, [category, spent]) => total + spent * (card.rates[category] || card.base), 0) * 4;
  return CARDS.map((card) => ({ card, reward: yearly(card) })).sort((a, b) => b.reward - a.reward)[0];
}

async function recommend() {
  $("status").textContent = "Reading your transactions...";
  $("status").className = "";
  try {
    const sums = await spending();
    const total = [...sums.values()].reduce((a, b) => a + b, 0) || 1;
    $("categories").innerHTML = [...sums]
      .filter(([, spent]) => spent > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([category, spent]) =>
        `<p>${category}: ${money(spent)}</p><div class="bar" style="width:${(100 * spent) / total}%"></div>`)
      .join("");
    const { card, reward } = best(sums);
    $("card").textContent = `Recommended: ${card.name}, about ${money(reward)} back a year on spending like yours.`;
    $("result").hidden = false;
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = `Refused: ${error.code}. ${error.message || ""}`;
    $("status").className = "refused";
  }
}

$("recommend").addEventListener("click", recommend);
