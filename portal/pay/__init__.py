"""The public pay page: a customer opens the link of an SMS or e-mail (portal.messages.vietqr
``pay_link``) and sees the loan's VietQR code, the amount, the bank's account and the transfer
text — no sign-in, a signed and expiring token, rate-limited."""
