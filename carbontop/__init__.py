"""carbontop: how many watts, kWh and grams of CO2 did that model cost?"""

__version__ = "0.1.0"
