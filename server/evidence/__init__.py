"""Second look at every result with a face, after its verdict: is the evidence genuine, and who is it?"""
