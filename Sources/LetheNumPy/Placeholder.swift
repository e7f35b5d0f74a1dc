import LetheIR
