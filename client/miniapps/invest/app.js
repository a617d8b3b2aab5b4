// Budget Buddy invest: cash above the buffer the client chooses, split between a
// global equity fund and a bond fund by a simple rule of thumb, and invested by a
// payment into the client's investment account.
"use strict";
const $ = (id) => document.getElementById(id);
const money = (value) => "£" + value.toLocaleString("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

async function cash() {
  let total = 0;
  for (const account of (await consentnet.accounts()).Data.Account) {
    const balance = (await consentnet.balances(account.AccountId)).Data.Balance[0];
    total += Number(balance.Amount.Amount) * (balance.CreditDebitIndicator === "Debit" ? -1 : 1);
  }
  return total;
}

function split(amount) {
  const parts = [["Global equity fund", 0.7], ["Government bond fund", 0.3]];
  return parts
    .map(([fund, share]) => `<p>${fund}: ${money(amount * share)}</p><div class="bar" style="width:${share * 100}%"></div>`)
    .join("");
}

async function advise() {
  $("status").textContent = "Reading your balances...";
  $("status").className = "";
  try {
    const held = await cash();
    const buffer = Math.max(0, Number($("buffer").value) || 0);
    const spare = Math.max(0, held - buffer);
    $("cash").textContent = money(held);
    $("invest").textContent = money(spare);
    $("split").innerHTML = spare > 0 ? split(spare) : "<p>Keep it all as cash for now.</p>";
    $("advice").hidden = false;
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = `Refused: ${error.code}. ${error.message || ""}`;
    $("status").className = "refused";
  }
}

// The client's investment account with Budget Buddy Investments.
const INVESTMENT_ACCOUNT = { creditorAccount: "20000087654321", creditorName: "Budget Buddy Investments ISA" };

async function investNow() {
  const amount = Math.floor(Number($("amount").value) || 0);
  $("paid").className = "";
  $("paid").textContent = "Asking your bank to pay...";
  try {
    const answer = await consentnet.pay({ amount: `${amount}.00`, reference: "ISA top-up", ...INVESTMENT_ACCOUNT });
    $("paid").textContent = `Paid £${amount}.00 into your ISA: payment ${answer.Data.DomesticPaymentId}, ${answer.Data.Status}.`;
  } catch (error) {
    $("paid").textContent = `Refused: ${error.code}. ${error.message || ""}`;
    $("paid").className = "refused";
  }
}

$("advise").addEventListener("click", advise);
$("invest-now").addEventListener("click", investNow);
