// Lendwise credit check: income, spending and surplus over 90 days from the bank's own
// data, and the monthly repayment that leaves a safety margin.
"use strict";
const $ = (id) => document.getElementById(id);
const money = (value) => "£" + value.toLocaleString("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const day = (date) => date.toISOString().slice(0, 10);
const signed = (entry) => Number(entry.Amount.Amount) * (entry.CreditDebitIndicator === "Debit" ? -1 : 1);

async function totals() {
  const to = new Date();
  const from = new Date(to.getTime() - 90 * 86400000);
  const sums = { income: 0, spending: 0, balance: 0 };
  for (const account of (await consentnet.accounts()).Data.Account) {
    const balance = (await consentnet.balances(account.AccountId)).Data.Balance[0];
    sums.balance += signed(balance);
    const page = await consentnet.transactions(account.AccountId, day(from), day(to));
    for (const entry of page.Data.Transaction || []) {
      const value = signed(entry);
      if (value > 0) sums.income += value;
      else sums.spending -= value;
    }
  }
  return sums;
}

async function check() {
  $("status").textContent = "Reading your accounts...";
  $("status").className = "";
  try {
    const sums = await totals();
    const income = sums.income / 3;
    const spending = sums.spending / 3;
    const surplus = income - spending;
    $("income").textContent = money(income);
    $("spending").textContent = money(spending);
    $("surplus").textContent = money(surplus);
    $("balance").textContent = money(sums.balance);
    // Lend against at most 40% of what is left each month.
    const repayment = Math.max(0, surplus * 0.4);
    $("verdict").textContent = repayment > 0
      ? `You could afford repayments of up to ${money(repayment)} a month.`
      : "Your spending is above your income: we cannot offer a loan now.";
    $("result").hidden = false;
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = `Refused: ${error.code}. ${error.message || ""}`;
    $("status").className = "refused";
  }
}

$("check").addEventListener("click", check);
